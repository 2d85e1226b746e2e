"""Evaluation: metrics of predictions against labels (``metrics``), the run report
(``report``) and its plots (``plots``).
"""
