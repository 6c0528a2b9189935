"""softleak: the command line over ``theory``, ``simulate``, ``compare`` and ``paper_figs``.

Only the command line lives here; it imports the libraries lazily so that ``softleak theory ...``
answers without loading torch.
"""

__version__ = "0.1.0"
