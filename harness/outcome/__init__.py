"""What a judged run gives: the result type, reports, failure messages, SBOM."""
