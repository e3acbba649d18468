"""The tokenizer tool: pytorch_tokenizer_manager (``tokenizer_manager.py``).

``tokenizer_training.py`` trains BPE / WordPiece / CharLevel tokenizers, ``tokenizer_store.py``
loads and saves them, ``corpus_stats.py`` measures a corpus (and asks the LLM for advice).
"""
