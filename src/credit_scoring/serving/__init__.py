"""The online contract (typed requests and responses), the scorer behind it and the thin
BentoML service.
"""
