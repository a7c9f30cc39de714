"""Baselines the documents compare against whose layer sizes are not public: registered so that every report
can say so, and with no model built under their names."""

from __future__ import annotations

from ._registry import ReferenceModel, register

register(
    ReferenceModel(
        name="bilstm-ed",
        description="BiLSTM-ED: bidirectional-RNN encoder-decoder health-index model",
        citation="W. Yu, I. Y. Kim, C. Mechefske, Mechanical Systems and Signal Processing 129 (2019) 764-780",
        input_shape=None,
        builder=None,
        published_architecture=False,
        notes="No layer sizes (hidden units, layers, window) were found in the paper's public material or any public "
        "implementation; the documents' '~1.5M' cannot be checked.",
    )
)

register(
    ReferenceModel(
        name="dkamformer",
        description="DKAMFormer: knowledge-graph-augmented multiscale time-scale-guided self-attention",
        citation="Fu et al., IEEE/CAA Journal of Automatica Sinica (2025), doi:10.1109/JAS.2025.125126",
        input_shape=None,
        builder=None,
        published_architecture=False,
        notes="Only the abstract is public: no d_model, heads, layers, scales or code; the documents' '~8M' cannot be "
        "checked.",
    )
)
