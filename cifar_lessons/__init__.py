"""cifar-lessons: the helpers the chapters of the CIFAR-10 book import.

Modules, by concept: ``data`` (sources, cache, validation split), ``models``
(architectures), ``training`` (config and the training loop), ``evaluation``
(test metrics), ``plots``, ``results`` (run records), ``chapters`` (the registry),
``book`` (reuse-or-train a chapter) and ``cli``. Importing the package has no side
effects; import the module you need.
"""

__version__ = "0.1.0"
