"""Services: one function per user action. Read rows, call a pipeline stage, write rows.

Services own transactions; the CLI and the UI call them and nothing below them.
"""
