"""`python -m rdprobe`: the same as the rdprobe command."""

from rdprobe.cli import main

try:
    main()
finally:
    # A Ctrl-C that ends a string exec (dataclasses and typing run them while modules load) is
    # remembered by CPython even when rdprobe catches it, and under -m (only) the interpreter
    # then dies by SIGINT instead of exiting 130 (Py_RunMain checks its
    # unhandled_keyboard_interrupt flag); every string exec clears that flag first.
    exec("")
