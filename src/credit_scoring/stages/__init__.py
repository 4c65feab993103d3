"""One module per DVC stage: read inputs, call the core, write outputs atomically, return a
summary.
"""
