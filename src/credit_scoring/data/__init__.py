"""Raw behaviour data in: the synthetic world, validation of user files, and the one reader of
validated tables.
"""
