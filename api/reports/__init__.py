"""The evaluation report: a site's indicators over a period, as HTML with charts, or PDF."""

from api.reports.content import Report, ReportError, ReportSources, assemble
from api.reports.html import render_html
from api.reports.language import Lang
from api.reports.pdf import PdfUnavailable, render_pdf

__all__ = ["Lang", "PdfUnavailable", "Report", "ReportError", "ReportSources", "assemble",
           "render_html", "render_pdf"]
