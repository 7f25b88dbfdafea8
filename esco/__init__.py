"""ESCO skills and occupations: the importer and matcher, independent of conversations.

The importer and the matcher arrive with issue #6.
"""
