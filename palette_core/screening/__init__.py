"""From a patient record to a trait: the record contract, eligibility (Sepsis-3, Phoenix),
the Seymour subphenotypes, trait classification and the multi-trait policy, the dose
calculator and the synthetic cohort."""
