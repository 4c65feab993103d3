"""Point-in-time features: the registry (one home of feature knowledge) and the engines that
compute them (in memory, streaming by chunks, Dask).
"""
