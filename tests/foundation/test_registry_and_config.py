import pytest

from common.config import ConfigError, Param, StudySpec, base_params, config_hash, get_study, positive
from common.registry import Registry, UnknownNameError


def test_registry_register_create_list_and_unknown_name():
    reg = Registry("fusion")

    @reg.register("hadamard", paper_name="Hadamard")
    class Hadamard:
        def __init__(self, dim=4):
            self.dim = dim

    @reg.register("concat")
    class Concat:
        pass

    assert reg.list() == ["concat", "hadamard"]
    assert reg.list("had*") == ["hadamard"]
    assert reg.create("hadamard", dim=7).dim == 7
    assert reg.info("hadamard") == {"paper_name": "Hadamard"}
    with pytest.raises(UnknownNameError) as err:
        reg.get("hadamrd")
    assert "'hadamrd'" in str(err.value) and "Did you mean 'hadamard'" in str(err.value)
    assert "concat, hadamard" in str(err.value)
    with pytest.raises(ValueError):
        reg.register("concat")(Hadamard)


def _spec():
    spec = StudySpec("toy", template="toy.py")
    spec.add(*base_params(lambda: ["A", "B"], lambda: ["x", "y"], "A", "x"))
    spec.add(Param("epochs", int, None, check=positive), Param("lr", float, 1e-3))
    spec.profiles = {"demo": {"epochs": 2}, "paper": {"epochs": 300}}
    return spec


def test_resolve_fills_profile_defaults_and_widens_ints():
    spec = _spec()
    cfg = spec.resolve({"dataset": "B", "lr": 1})
    assert cfg["epochs"] == 2 and cfg["lr"] == 1.0 and isinstance(cfg["lr"], float)
    assert spec.resolve({"profile": "paper"})["epochs"] == 300
    with pytest.raises(TypeError):
        cfg["epochs"] = 3  # resolved configs are immutable


@pytest.mark.parametrize("given, words", [
    ({"dataset": "C"}, ["dataset", "'C'", "A, B"]),
    ({"profile": "fast"}, ["profile", "'fast'", "demo, paper"]),
    ({"epochs": "3"}, ["epochs", "int", "'3'"]),
    ({"epochs": 0}, ["epochs", "> 0"]),
    ({"epochs": True}, ["epochs", "int"]),
    ({"epoch": 3}, ["unknown", "epoch", "Accepted"]),
])
def test_bad_parameters_name_the_value_and_the_accepted_ones(given, words):
    with pytest.raises(ConfigError) as err:
        _spec().resolve(given)
    for w in words:
        assert w in str(err.value)


def test_config_hash_is_stable_and_sensitive():
    spec = _spec()
    a, b = spec.resolve({"seed": 1}), spec.resolve({"seed": 1})
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(spec.resolve({"seed": 2}))


def test_real_studies_resolve_their_defaults():
    for name in ("smile", "hafem"):
        spec = get_study(name)
        for profile in spec.profiles:
            cfg = spec.resolve({"profile": profile})
            assert cfg["study"] == name and cfg["profile"] == profile
