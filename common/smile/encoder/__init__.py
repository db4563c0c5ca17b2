"""The released MeshSmileNet point encoder, a CurveNet (Xiang et al., "Walk in the Cloud", ICCV 2021,
arXiv:2105.01288) applied to each frame's landmarks: ``graph`` (k-NN table, coordinate-pair moments), ``layers``
(channels-last BN and LReLU), ``lpfa`` (local point-feature aggregation), ``curves`` (curve grouping and aggregation),
``cic`` (the CIC block and the encoder that stacks them), ``chunks`` (work over frames in chunks, split over
the threads)."""
