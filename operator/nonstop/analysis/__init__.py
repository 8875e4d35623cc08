"""Pure metric analysis: conditions on metric results, the verdict of a metric and of an
analysis, a built-in canary-versus-stable comparison, and template variables for queries.

No I/O, no clock (times are passed in), no Kubernetes: the provider queries live elsewhere
and hand numbers (or error messages) to this package.
"""

from nonstop.analysis.compare import ComparisonResult, MannWhitney, compare, mann_whitney_u
from nonstop.analysis.expr import ExprError, check, condition, evaluate, parse
from nonstop.analysis.template import TemplateError, render
from nonstop.analysis.verdict import (
    AnalysisPhase,
    Measurement,
    MeasurementPhase,
    MetricPhase,
    MetricPolicy,
    MetricState,
    analysis_phase,
    due,
    judge,
    next_due,
    record_error,
)

__all__ = [
    "AnalysisPhase",
    "ComparisonResult",
    "ExprError",
    "MannWhitney",
    "Measurement",
    "MeasurementPhase",
    "MetricPhase",
    "MetricPolicy",
    "MetricState",
    "TemplateError",
    "analysis_phase",
    "check",
    "compare",
    "condition",
    "due",
    "evaluate",
    "judge",
    "mann_whitney_u",
    "next_due",
    "parse",
    "record_error",
    "render",
]
