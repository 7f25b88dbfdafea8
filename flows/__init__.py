"""The interview as data: flow definitions written with counsellors, and their engine.

The worker hands each answer to the engine after commands and language; the engine
and the initial-interview flow arrive with issue #3.
"""
