"""The Textual dashboard (``coldlab tui``). Importing :mod:`coldlab` never imports this package;
:mod:`coldlab.tui.data` and :mod:`coldlab.tui.render` work without Textual."""
