//! Offline metrics, counterfactual estimators and reports that match trusted tools.
