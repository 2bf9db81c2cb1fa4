"""Publication: what the center tells the public.

What a published month contains (``published``: the one definition), its frozen revisions
(``snapshot``), the monthly publication in HTML, PDF and Markdown (``monthly``), its
statistics and charts (``stats``), the cases' figures (``figures``), which cases are of a
new type (``novelty``) and what everyone should do about them (``advisories``).

Nothing here is imported eagerly: WeasyPrint and matplotlib load only when a document or
a chart is drawn.
"""
