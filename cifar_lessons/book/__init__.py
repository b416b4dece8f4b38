"""The book's machinery: the chapter registry, running chapters (reuse a recorded run or train it), run
identities, the seed study and its verdicts, what each chapter measures on its records, the reports, tables and
charts written from them, notebook execution and the command line. It imports the core (``cifar_lessons``) and
chapter 11's recipe (``cifar_lessons.going_further``); neither imports it.
"""
