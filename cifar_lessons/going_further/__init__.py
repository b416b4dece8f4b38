"""Going further (Chapter 11): a fast recipe in the spirit of airbench94, with its own training loop
(``fast``), every hyperparameter in one place (``fast_config``), test-time augmentation (``fast_tta``), its
ablations, the race against chapter 8 and the arithmetic cost of the network (``flops``). It imports the core
(``cifar_lessons``), never the book's machinery.
"""
