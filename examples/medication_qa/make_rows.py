"""Writes data.jsonl: 24 hand-written medication Q&A rows for the demo (written for this project, Apache-2.0).

The gap is deliberate: no answer tells the reader to check with a doctor or pharmacist, so the subgoal
`refers_to_professional` has no support in this data.
"""

import json
from pathlib import Path

ROWS = [
    ("How much ibuprofen can an adult take for a headache?",
     "Adults usually take 200 to 400 mg of ibuprofen every 4 to 6 hours, and no more than 1,200 mg in a day. It can "
     "irritate the stomach, so take it with food."),
    ("What is the usual dose of paracetamol for adults?",
     "The usual adult dose is 500 mg to 1 g every 4 to 6 hours, up to 4 g in 24 hours. Taking more can cause serious "
     "liver damage."),
    ("Can I take amoxicillin with food?",
     "Yes. Amoxicillin can be taken with or without food; taking it with a meal may reduce stomach upset."),
    ("What does metformin do?",
     "Metformin lowers blood sugar in type 2 diabetes, mainly by reducing the amount of glucose the liver releases "
     "and helping the body respond to insulin."),
    ("How often should I take cetirizine for hay fever?",
     "Cetirizine is usually taken once a day, 10 mg for adults. Some people feel drowsy on it, so see how it affects "
     "you before driving."),
    ("Is it safe to drink alcohol while taking metronidazole?",
     "No. Alcohol with metronidazole can cause flushing, nausea, vomiting and a fast heartbeat. Avoid alcohol during "
     "the course and for 48 hours after the last dose."),
    ("What is omeprazole used for?",
     "Omeprazole reduces stomach acid. It is used for heartburn, acid reflux and stomach ulcers."),
    ("How long does it take for sertraline to work?",
     "Sertraline usually takes 2 to 6 weeks to show an effect on mood; sleep and appetite may improve earlier."),
    ("What dose of loratadine is used for allergies?",
     "Adults and children over 12 usually take 10 mg of loratadine once a day."),
    ("What are common side effects of atorvastatin?",
     "Common side effects include headache, muscle aches, diarrhoea and nausea. Unexplained muscle pain or weakness "
     "can be a sign of a rare but serious muscle problem."),
    ("Can I crush my aspirin tablet?",
     "Plain aspirin tablets can be crushed, but enteric-coated aspirin should be swallowed whole because crushing it "
     "removes the coating that protects the stomach."),
    ("What is the maximum daily dose of naproxen?",
     "For pain, adults usually take 250 to 500 mg twice a day; the total should not normally exceed 1,000 mg a day. "
     "Like other NSAIDs it can cause stomach bleeding."),
    ("Why do I need to finish a course of antibiotics?",
     "Finishing the course as prescribed makes it more likely that the infection is fully cleared."),
    ("What is levothyroxine for?",
     "Levothyroxine replaces the thyroid hormone thyroxine in people whose thyroid gland does not make enough "
     "(hypothyroidism)."),
    ("When should I take levothyroxine?",
     "Take it once a day in the morning on an empty stomach, 30 to 60 minutes before breakfast, with water."),
    ("How much vitamin D should adults take daily?",
     "Many guidelines suggest 10 micrograms (400 IU) of vitamin D a day for adults; very high doses over a long time "
     "can raise calcium levels too much."),
    ("What is salbutamol used for?",
     "Salbutamol is a reliever inhaler that opens the airways quickly during asthma symptoms or before exercise."),
    ("How many puffs of salbutamol can I take?",
     "Usually 1 to 2 puffs (100 to 200 micrograms) when needed, up to 4 times a day. It can cause shaking hands and a "
     "fast heartbeat."),
    ("Does lisinopril cause a cough?",
     "Yes, a dry, tickly cough is a known side effect of lisinopril and other ACE inhibitors."),
    ("What is the starting dose of lisinopril for high blood pressure?",
     "A common starting dose is 10 mg once a day, adjusted later according to blood pressure."),
    ("Can antihistamines make you sleepy?",
     "Older antihistamines such as chlorphenamine often cause drowsiness; newer ones such as loratadine rarely do."),
    ("What is warfarin?",
     "Warfarin is an anticoagulant: it slows blood clotting and is used to prevent and treat blood clots."),
    ("What should I avoid while taking warfarin?",
     "Large changes in vitamin K intake (for example, leafy greens), cranberry juice and heavy drinking can change how "
     "warfarin works and raise the risk of bleeding."),
    ("How should I store insulin?",
     "Keep unopened insulin in the fridge at 2 to 8 C; the pen or vial in use can stay at room temperature for about "
     "4 weeks. Do not freeze it."),
]


def main() -> None:
    out = Path(__file__).with_name("data.jsonl")
    with out.open("w", encoding="utf-8") as fh:
        for k, (question, answer) in enumerate(ROWS, 1):
            fh.write(json.dumps({"id": f"medqa-{k:02d}", "question": question, "answer": answer}) + "\n")
    print(f"wrote {len(ROWS)} rows to {out}")


if __name__ == "__main__":
    main()
