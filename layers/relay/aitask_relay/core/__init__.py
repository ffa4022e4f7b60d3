"""The core: the record, the error taxonomy, task ids, normalization, tracking, settings and the ports.

Values and pure decisions only: no I/O, no SDK, and no import of a use case, an adapter or a trigger.
"""
