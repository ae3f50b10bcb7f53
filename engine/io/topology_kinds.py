"""The one table of the topology kinds: for each :class:`~engine.io.topology_format.Kind`, the functions that write
its document body and lab CSV, count the numbers a rebuilt network of it holds, rebuild it, and keep what a
rebuilt model cannot say when it is written again. Writer, size checks and reader look a kind up here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from engine.core.model_base import PerceptronModel
from engine.io import topology_rf as rf
from engine.io import topology_sparse as sparse
from engine.io.topology_format import Kind


@dataclass(frozen=True)
class KindCodec:
    """How one kind of network is written, sized and read back."""

    #: (model, image shape or None) -> the kind's entries of the document
    body: Callable[..., dict]
    #: document -> (columns, rows) of the lab CSV
    table: Callable[[dict], tuple[list, list]]
    #: (document, n_in, n_classes, layer_sizes or None, layer_ks) -> numbers the rebuilt network holds
    parameters: Callable[..., int]
    #: (document, n_inputs, n_classes, image shape, RunConfig) -> the checked, rebuilt model
    load: Callable[..., PerceptronModel]
    #: (new document, loaded document) -> None: copy into the new one what the rebuilt model cannot say
    keep_records: Optional[Callable[[dict, dict], None]] = None


CODECS: dict[Kind, KindCodec] = {
    Kind.RF: KindCodec(rf.rf_body, rf.rf_table, rf.rf_parameters, rf.load_rf, rf.keep_rf_record),
    Kind.SPARSE: KindCodec(sparse.sparse_body, sparse.sparse_table, sparse.sparse_parameters, sparse.load_sparse),
    Kind.RF_NETWORK: KindCodec(
        rf.rf_network_body, rf.rf_network_table, rf.rf_network_parameters, rf.load_rf_network, rf.keep_rf_network_record
    ),
    Kind.SPARSE_NETWORK: KindCodec(
        sparse.sparse_network_body,
        sparse.sparse_network_table,
        sparse.sparse_network_parameters,
        sparse.load_sparse_network,
    ),
}


def codec(kind: str) -> KindCodec:
    """The functions of ``kind`` (a :class:`Kind` or its JSON value, which must be one)."""
    return CODECS[Kind(kind)]
