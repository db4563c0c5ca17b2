"""Work over frames in chunks, and the chunks over the threads.

Frames never mix in the encoder's neighbourhoods, so the per-pair work of a batch (fused LPFA, k-NN, neighbour max) is
done a few frames at a time, keeping the temporaries in cache, and the chunk list is cut into one part per intra-op
thread, each part single-threaded: these loops are many small ops, and one op split over two threads waits at a
barrier for both (with OMP_WAIT_POLICY=PASSIVE, for a sleeping thread to wake).
"""
from __future__ import annotations

import threading

import torch

CHUNK_ROWS = {"cpu": 16384, "other": 1 << 22}  # rows (neighbour pairs, or score entries / n) per chunk of frames; on
# CPU ~1-2 MB per tensor, so the temporaries stay in a core's L2 cache; on an accelerator large chunks keep kernels big


def frame_chunks(shape: tuple[int, int, int], device: torch.device) -> list[tuple[int, int]]:
    f, n, k = shape
    step = max(1, CHUNK_ROWS["cpu" if device.type == "cpu" else "other"] // (n * k))
    return [(a, min(f, a + step)) for a in range(0, f, step)]


def split_over_threads(chunks: list[tuple[int, int]], work, device: torch.device) -> list:
    """[work(part) for part in parts]: the chunk list cut into one contiguous part per intra-op thread, each part run
    single-threaded in its own thread (ATen releases the GIL), results in part order (so sums combine the same way
    every run). The loops are many small ops, and one op split over threads waits at a barrier for both: one thread
    per part does the same work without the barriers. One part, in this thread, where that cannot help (one thread,
    few chunks, not CPU, autocast on: autocast state is per thread). Grad and inference mode are carried over."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or len(chunks) < 2 * threads or torch.is_autocast_enabled("cpu"):
        return [work(chunks)]
    size = -(-len(chunks) // threads)
    parts = [chunks[i: i + size] for i in range(0, len(chunks), size)]
    results, errors = [None] * len(parts), []
    inference = torch.is_inference_mode_enabled()

    def run(i: int) -> None:
        try:
            torch.set_num_threads(1)
            with torch.inference_mode(inference), torch.no_grad():
                results[i] = work(parts[i])
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(1, len(parts))]
    for w in workers:
        w.start()
    try:
        run(0)
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]
    return results


def in_order_sums(parts: list[tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
    """Element-wise sums of the parts' tuples, added in part order."""
    totals = [x.clone() for x in parts[0]]
    for part in parts[1:]:
        for total, x in zip(totals, part):
            total += x
    return totals
