//! Per-direction TCP stream reassembly. (Owned by the flow work item.)
