"""yagu rule engine: load → validate → compile → evaluate → explain."""
from engine.evaluator import Evaluator, UnknownBenefit
from engine.loader import RuleLoadError, Rulebook, WindowContext, load_rulebook

__all__ = ["Evaluator", "UnknownBenefit", "RuleLoadError", "Rulebook", "WindowContext", "load_rulebook"]
