"""Report: what a reader opens: the summary page of a run (`summary`), the book rendered again only when what it
shows changed (`render`), its HTML pages with their Content-Security-Policy (`pages`), read well at any width
(`layout`), the Try it pad (`tryit`, `web/`) and the same pad as a notebook widget (`widget`).

Imports digits.util, the layer of digits.config and digits.data, digits.runs and the work (digits.model,
digits.evaluate, digits.predict, digits.plots); never digits.pipeline.
"""
