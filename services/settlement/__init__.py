"""The settlement service: period close from the ledger, frozen statements, approval and payroll export."""
