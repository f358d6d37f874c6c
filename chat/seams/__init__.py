"""Every reach into a library's private internals, one module per library.

The rest of the code calls only what these modules export. Each has a test in
`tests/chat/seams/` that names what moved when an upgrade breaks an assumption; the
libraries are pinned in requirements.txt.
"""
