"""Audio in and measured: reading and resampling files (``io``), the input high-pass
(``highpass``, ``fir``), loudness (``bs1770``, ``loudness``, ``loudness_stream``) and speech
detection with silero-vad (``vad``, ``vad_stream``). The first stage: everything else takes its
16 kHz mono float32 signals from here.
"""
