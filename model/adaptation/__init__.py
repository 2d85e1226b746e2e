"""Speaker adaptation: a speaker's own feature statistics as a profile (``profile``) and
their live accumulation while listening (``live``).
"""
