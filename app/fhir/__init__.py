"""FHIR R4 for EHRs: the Questionnaire, QuestionnaireResponse evaluation and the result."""
