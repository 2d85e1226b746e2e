"""Analysed files: the file worker in its own thread (``file_worker``), the queue of files
waiting (``file_queue``) and the Files tab (``file_panel``).
"""
