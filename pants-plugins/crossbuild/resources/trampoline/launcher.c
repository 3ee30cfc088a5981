/*
 * crossbuild trampoline launcher (C11, Linux and Windows).
 *
 * A trampoline is this launcher with a Python program appended to it. It
 * finds an interpreter and runs it with the trampoline file itself as the
 * script: Python's zipimport finds __main__.py in the zip appended to the
 * executable (a zip with a prefix is fine for zipimport, CPython >= 3.8).
 *
 * The file layout, the interpreter kinds and the launcher's own exit codes
 * (100-104) are described once, in trampoline_format.py (beside the plugin's
 * rules), which writes what this program reads: keep the two in step.
 *
 * This file is what zig compiles, one translation unit per target:
 *   launcher_common.h   reading and checking the footer, error messages
 *   launcher_posix.c    Linux: finds the interpreter and execs it
 *   launcher_windows.c  Windows, without a C runtime: runs the interpreter
 *                       as a child in a job object
 * Each platform file includes launcher_common.h and compiles on its own too.
 * The build commands are launcher_build_commands() in trampoline_format.py.
 */

#ifdef _WIN32
#include "launcher_windows.c"
#else
#include "launcher_posix.c"
#endif
