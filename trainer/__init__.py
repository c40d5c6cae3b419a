"""Fine-tuning and evaluation of bi-encoders on curated data (plain rows in, results out).

This package never imports ``curator``; the training stage itself lands with issue 7.
"""
