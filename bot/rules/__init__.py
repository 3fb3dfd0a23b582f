"""Pure rules: understanding replies, waking hours, phones, templates and segments.

Nothing here imports Flask or the database: each module is a function of its inputs.
"""
