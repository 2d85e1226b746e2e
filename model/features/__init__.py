"""Feature frontends: audio (N,) at 16 kHz -> frames (T, D).

``base`` holds the contract (``Frontend``), the input stage (high-pass, loudness normaliser) and
what every frontend shares; each concrete frontend has its own module (``logmel``,
``speech_embedding``, ``ge2e``, ``hubert``, ``combined``) importing ``base`` only; ``registry``
alone knows them all and builds one from a FrontendConfig. ``live`` holds their streaming
forms (frames computed once per stream position), ``cache`` the on-disk feature cache, and
``wheel_files`` the hash-checked encoder files shipped inside pinned wheels.
"""
