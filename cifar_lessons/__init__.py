"""cifar-lessons: the helpers the chapters of the CIFAR-10 book import.

What a learner imports: ``data`` (sources, cache, validation split), ``config`` and ``models``
(the recipe and the Keras blocks the chapters show), ``training`` (fit, checkpoint, resume, record),
``evaluation``, ``analysis``, ``plots``, ``charts`` and ``results`` (run records). The book's machinery:
``chapters`` (the registry), ``book``, ``seeds``, ``report``, ``notebooks`` and ``cli``. Chapter 11's
fast recipe: ``fast`` and ``fast_config``. The README's layout table lists every module.

Importing the package has no side effects and loads no TensorFlow; import the module you need.
"""

__version__ = "0.1.0"
