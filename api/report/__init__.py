"""The evaluation report: a site's indicators over a period, as HTML with charts, or PDF."""

from api.report.content import Report, ReportError, ReportSources, assemble
from api.report.html import render_html
from api.report.language import Lang
from api.report.pdf import PdfUnavailable, render_pdf

__all__ = ["Lang", "PdfUnavailable", "Report", "ReportError", "ReportSources", "assemble",
           "render_html", "render_pdf"]
