"""The ground floor: what every part shares and which imports no other project code.

errors (one-line errors, exit code 2), languages (a file's language from its path), console (stderr
output, progress bars), argtypes (command-line argument types), schema (each configuration field's type
and range), sstub (the single-statement fix-class
taxonomy and its classifier), atomic (atomic writes of files and folders), manifest (the record of a
resumable sharded output), storage (where a sharded output lives: a folder path or an fsspec URL).
"""
