"""The claims table's FER+ label-source counts, recounted from the released files (skipped when absent)."""
import pytest

from common import paths
from common.fer.ferplus_sources import compare_label_sources
from statistical_analysis import paper_claims as pc
from statistical_analysis.tables import hafem_paper_claims

FERPLUS = paths.SHARED_REALDATA_DIR / "ferplus"


@pytest.mark.skipif(not (FERPLUS / "fer2013new.csv").is_file(), reason="real FER+ label files not present")
def test_ferplus_label_sources_match_the_claims_table():
    got = compare_label_sources(FERPLUS)
    assert list(got) == list(pc.FERPLUS_SPLITS)
    for split, counts in got.items():
        assert counts["votes_differ"] == pc.FERPLUS_VOTES_DIFFER[split]
        assert counts["majority_label_csv"] == pc.FERPLUS_MAJORITY_LABEL_CSV[split]
        assert counts["majority_new_csv"] == pc.FERPLUS_MAJORITY_NEW_CSV[split]
        assert counts["majority_new_csv_all_rows"] == pc.FERPLUS_MAJORITY_NEW_CSV_ALL_ROWS[split]


def test_compare_label_sources_names_a_mismatch(tmp_path):
    from tests.fer_data.fer_writers import write_ferplus

    header_rows = [("Training", "fer0000000.png", [0, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
                   ("PublicTest", "fer0000001.png", [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                   ("PrivateTest", "fer0000002.png", [0, 0, 5, 0, 0, 0, 0, 0, 0, 0])]
    write_ferplus(tmp_path / "fer2013new.csv", header_rows)
    for folder, name, votes in [("FER2013Train", "fer0000000.png", "0,4,1,0,0,0,0,0,0,0"),
                                ("FER2013Valid", "fer0000001.png", "5,0,0,0,0,0,0,0,0,0"),
                                ("FER2013Test", "fer0000009.png", "0,0,5,0,0,0,0,0,0,0")]:
        (tmp_path / "data" / folder).mkdir(parents=True)
        (tmp_path / "data" / folder / "label.csv").write_text(f'{name},"(0, 0, 48, 48)",{votes}\n')
    with pytest.raises(ValueError, match="FER2013Test names differ"):
        compare_label_sources(tmp_path)


def test_claims_table_sets_each_claim_beside_our_number():
    table = hafem_paper_claims()
    text = "\n".join(" | ".join(r) for r in table.rows)
    assert "31.2 M | 230.4 M" in text and "d 200, FF 400: 31.22 M" in text
    assert "1,073 images with other votes; majority labels 25,045 vs 25,057" in text
    assert "multi_target" in text


def test_the_finetune_row_appears_beside_the_paper_claim_only_when_such_runs_exist(tmp_path):
    import pandas as pd

    from statistical_analysis.loading import Results
    from statistical_analysis.tables import hafem_datasets
    from common.results import COLUMNS

    def rows(variant, values):
        return [{"study": "hafem", "dataset": "RAF-DB", "variant": variant, "profile": "demo", "seed": s, "fold": 0,
                 "selection": "val", "metric": m, "value": v, "n_train": 28, "n_test": 14,
                 "run_dir": str(tmp_path / f"seed{s}"), "protocol": "paper"}
                for s, v in enumerate(values) for m in ("accuracy", "f1_macro")]

    plain = Results(pd.DataFrame(rows("hafem", [0.5, 0.6]), columns=[*COLUMNS, "run_dir", "protocol"]), tmp_path)
    assert [r[0] for r in hafem_datasets(plain, "demo").rows] == list(pc.FER_DATASETS)
    both = Results(pd.DataFrame(rows("hafem", [0.5, 0.6]) + rows(pc.HAFEM_FINETUNE_VARIANT, [0.7, 0.8]),
                                columns=[*COLUMNS, "run_dir", "protocol"]), tmp_path)
    table = hafem_datasets(both, "demo")
    extra = table.rows[-1]
    assert extra[0] == "RAF-DB (fine-tuned from FER2013)" and extra[1] == "75.0 ± 7.1 (n=2)" and extra[4] == "95.1"
    assert any("20-epoch" in n or "fine-tuned 20 epochs" in n for n in table.notes)
