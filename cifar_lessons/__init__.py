"""cifar-lessons: the helpers the chapters of the CIFAR-10 book import.

The core a learner imports sits here: ``sources`` and ``data`` (reading CIFAR-10, the cache, the validation
split), ``config`` and ``models`` (the recipe and the Keras blocks the chapters show), ``training`` with
``checkpoints``, ``run_folder`` and ``devices`` (fit, checkpoint, resume, record; precision and strategy),
``evaluation``, ``analysis``, ``plots`` and ``results`` (run records). The book's machinery is in
``cifar_lessons.book``, chapter 11's fast recipe in ``cifar_lessons.going_further``. The README's layout table
lists every module.

Importing the package has no side effects and loads no TensorFlow; import the module you need.
"""

__version__ = "0.1.0"
