"""The explorer's state, shared by the views: which network they show, which chain is selected, and whether
they follow the live run or stay on a pinned result.

:class:`ExplorerModel` holds no widget. The main window connects the views to its signals; presenters change
it (a live snapshot, a finished run, a clicked result, an imported file, an untrained preview) and the views
redraw from what it emits.
"""
from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject, Signal, Slot

from .state import DisplayState


class ExplorerModel(QObject):
    state_changed = Signal(object)   #: DisplayState now on display
    chain_changed = Signal(int)      #: selected chain (class)
    follow_changed = Signal(bool)    #: True: the views follow the live run
    layer_changed = Signal(int)      #: selected layer of a multilayer network (0: the first)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.state: Optional[DisplayState] = None
        self.selected_chain = 0
        self.selected_layer = 0
        self.follow_live = True
        self.pinned: Any = None  #: the session point on display while not following (None otherwise)

    # --- what is shown ------------------------------------------------------------------------------------
    def show(self, state: DisplayState) -> None:
        """Show a state now (whatever follow_live says)."""
        self.state = state
        if self.selected_layer >= state.n_layers:
            self.select_layer(state.n_layers - 1)
        if self.selected_chain >= state.n_chains:
            self.select_chain(state.n_chains - 1)
        self.state_changed.emit(state)

    def show_live(self, state: DisplayState) -> bool:
        """Show a state of the live run if the views follow it; True if shown."""
        if not self.follow_live:
            return False
        self.show(state)
        return True

    def show_preview(self, state: DisplayState) -> None:
        """The untrained network of the current settings: shown, and the views follow the live run again."""
        self.set_follow_live(True)
        self.show(state)

    def pin(self, state: DisplayState, point: Any = None) -> None:
        """Stop following the live run and show ``state`` (of a session point, or an imported file)."""
        self.set_follow_live(False)
        self.pinned = point
        self.show(state)

    # --- selection and following ----------------------------------------------------------------------
    @Slot(int)
    def select_chain(self, j: int) -> None:
        n = self.state.n_chains if self.state is not None else max(j + 1, 1)
        j = int(max(0, min(n - 1, j)))
        if j != self.selected_chain:
            self.selected_chain = j
        self.chain_changed.emit(j)

    @Slot(int)
    def select_layer(self, layer: int) -> None:
        n = self.state.n_layers if self.state is not None else max(layer + 1, 1)
        layer = int(max(0, min(n - 1, layer)))
        self.selected_layer = layer
        self.layer_changed.emit(layer)

    @Slot(bool)
    def set_follow_live(self, on: bool) -> None:
        on = bool(on)
        if on:
            self.pinned = None
        changed = on != self.follow_live
        self.follow_live = on
        if changed:
            self.follow_changed.emit(on)
