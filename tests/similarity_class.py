"""A generated class of lab 1 submissions for the similarity report's tests: honest students who each combine, per
question, one of several genuinely different approaches with their own small choices, names and layout; and
planted copies of some of them (variables renamed, functions reordered, comments and whitespace changed, written
answers lightly edited)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from utils.grading.notebook import cell_source, nbgrader_meta, parse_lab
from utils.grading.scores import Record, publish

LAB = Path(__file__).resolve().parents[1] / "labs" / "lab1" / "lab1.ipynb"
NAMES = ["counts", "freq", "tally", "seen", "kept", "words", "vocab", "result", "out", "items", "tok", "w", "word",
         "token", "t", "n", "c", "cnt", "num", "rows", "batch", "padded", "longest", "size", "maxlen", "grid", "ids",
         "seq", "idx", "i", "j", "k", "row", "r", "mask", "hit", "nz", "g", "grad", "loss", "now", "before", "prev",
         "cur", "moved", "changed", "a", "b", "x", "y", "lst", "acc", "buf", "tab", "table", "res", "ans", "tmp"]


@dataclass
class Student:
    """What one student chose: an approach and small choices per question, their names, and their layout."""

    approach: dict[str, int]
    choice: dict[str, int]
    names: list[str]
    order: bool
    comments: int
    indent: int
    blank: int
    quirks: int = 0
    text: dict[str, str] = field(default_factory=dict)


def _names(rng: random.Random) -> list[str]:
    return rng.sample(NAMES, 12)


def honest(rng: random.Random) -> Student:
    """A student who worked alone."""
    approach = {q: rng.randrange(n) for q, n in APPROACHES.items()}
    choice = {q: rng.randrange(32) for q in APPROACHES}
    student = Student(approach, choice, _names(rng), rng.random() < 0.5, rng.randrange(3), rng.choice((4, 2)),
                      rng.randrange(2), rng.randrange(2**30))
    student.text = {q: written(q, rng) for q in IDEAS}
    return student


def copied(source: Student, rng: random.Random) -> Student:
    """A copy of `source`: other names, the functions in the other order, other comments and layout, written
    answers with a few words changed."""
    names = _names(rng)
    while set(names) & set(source.names[:6]):
        names = _names(rng)
    text = {q: edited(t, rng) for q, t in source.text.items()}
    return replace(source, names=names, order=not source.order, comments=(source.comments + 1) % 3,
                   indent=6 - source.indent, blank=1 - source.blank, text=text)


# ------------------------------------------------------------------------------------------------- code

def _comment(s: Student, text: str) -> str:
    return {0: "", 1: f"  # {text}", 2: "  # TODO check"}[s.comments]


def _bit(s: Student, question: str, n: int) -> int:
    """The student's n-th small choice for a question (0 or 1)."""
    return (s.choice[question] >> n) & 1


def q1(s: Student) -> str:
    c, k, t, n, d, lst = s.names[:6]
    a, bit = s.approach["q1"], lambda i: _bit(s, "q1", i)
    specials = f"[PAD, UNK] + {k}" if bit(2) else f"[PAD, UNK, *{k}]"
    if a == 0:
        count = f"{c} = Counter({t} for {d} in documents for {t} in {d})" if bit(0) else \
            f"{c} = Counter()\nfor {d} in documents:\n    {c}.update({d})"
        keep = f"{k} = [{t} for {t}, {n} in {c}.items() if {n} >= min_freq]" if bit(1) else \
            f"{k} = [{t} for {t} in {c} if {c}[{t}] >= min_freq]"
        order = f"{k}.sort(key=lambda {t}: (-{c}[{t}], {t}))" if bit(3) else \
            f"{k} = sorted({k}, key=lambda {t}: ({c}[{t}] * -1, {t}))"
        body = [count, keep, order + _comment(s, "most frequent first"), f"return {specials}"]
    elif a == 1:
        body = [f"{c} = {{}}", f"for {d} in documents:", f"    for {t} in {d}:",
                f"        {c}[{t}] = {c}.get({t}, 0) + 1" if bit(0) else
                f"        if {t} not in {c}:\n            {c}[{t}] = 0\n        {c}[{t}] += 1",
                f"{lst} = sorted({c}.items(), key=lambda {n}: {n}[0])",
                f"{lst} = sorted({lst}, key=lambda {n}: {n}[1], reverse=True)" + _comment(s, "stable sort"),
                f"{k} = [{t} for {t}, {n} in {lst} if {n} >= min_freq]" if bit(1) else
                f"{k} = []\nfor {t}, {n} in {lst}:\n    if {n} >= min_freq:\n        {k}.append({t})",
                f"return {specials}"]
    elif a == 2:
        body = [f"{c} = Counter()", f"for {d} in documents:",
                f"    {c}.update({d})" if bit(0) else f"    for {t} in {d}:\n        {c}[{t}] += 1",
                f"{k} = []", f"for {t}, {n} in sorted({c}.most_common(), key=lambda p: (-p[1], p[0])):",
                f"    if {n} < min_freq:", "        break" if bit(1) else "        continue",
                f"    {k}.append({t})", f"return {specials}"]
    else:
        body = [f"{lst} = [{t} for {d} in documents for {t} in {d}]" if bit(0) else
                f"{lst} = []\nfor {d} in documents:\n    {lst}.extend({d})",
                f"{c} = {{{t}: {lst}.count({t}) for {t} in set({lst})}}" if bit(1) else f"{c} = dict(Counter({lst}))",
                f"{k} = sorted(({t} for {t} in {c} if {c}[{t}] >= min_freq), key=lambda {t}: (-{c}[{t}], {t}))",
                f"{k}.insert(0, UNK)\n{k}.insert(0, PAD)" if bit(2) else f"{k} = [PAD, UNK] + {k}",
                f"return {k}"]
    return _cell(s, "q1_build_vocab", {"build_vocab": body})


def q2(s: Student) -> str:
    t, i, r, x = s.names[6:10]
    a, bit = s.approach["q2"], lambda n: _bit(s, "q2", n)
    unknown = f"{r}.append(stoi[{t}] if {t} in stoi else UNK_ID)" if bit(2) else \
        f"if {t} in stoi:\n        {r}.append(stoi[{t}])\n    else:\n        {r}.append(UNK_ID)"
    encode = [[f"return [stoi.get({t}, UNK_ID) for {t} in tokens]" if bit(3) else
               f"{r} = [stoi.get({t}, UNK_ID) for {t} in tokens]\nreturn {r}"],
              [f"{r} = []", f"for {t} in tokens:", f"    {unknown}" + _comment(s, "unknown word"), f"return {r}"],
              [f"{r} = []", f"for {t} in tokens:", "    try:", f"        {r}.append(stoi[{t}])",
               "    except KeyError:", f"        {r}.append(UNK_ID)", f"return {r}"],
              [f"return list(map(lambda {t}: stoi[{t}] if {t} in stoi else UNK_ID, tokens))" if bit(3) else
               f"return [stoi[{t}] if {t} in stoi else UNK_ID for {t} in tokens]"]][a]
    decode = [[f"return [itos[{i}] for {i} in map(int, ids) if {i} != PAD_ID]" if bit(4) else
               f"return [itos[int({i})] for {i} in ids if int({i}) != PAD_ID]"],
              [f"{x} = []", f"for {i} in ids:", f"    {i} = int({i})" if bit(4) else f"    {i} = {i}.item() "
               f"if hasattr({i}, 'item') else {i}", f"    if {i} == PAD_ID:", "        continue",
               f"    {x}.append(itos[{i}])", f"return {x}"],
              ["if isinstance(ids, torch.Tensor):", "    ids = ids.tolist()",
               f"return [itos[{i}] for {i} in ids if {i} != PAD_ID]" if bit(4) else
               f"return [itos[{i}] for {i} in ids if {i} > 0]"],
              [f"return list(filter(lambda {t}: {t} != itos[PAD_ID], (itos[int({i})] for {i} in ids)))"]][
        bit(0) + 2 * bit(1)]
    return _cell(s, "q2_encode_decode", {"encode": encode, "decode": decode})


def q3(s: Student) -> str:
    m, b, r, i = s.names[1:5]
    a, bit = s.approach["q3"], lambda n: _bit(s, "q3", n)
    longest = [f"{m} = max(len({i}) for {i} in id_lists)", f"{m} = max([len({i}) for {i} in id_lists] + [0])",
               f"{m} = 0\nfor {i} in id_lists:\n    {m} = max({m}, len({i}))",
               f"{m} = max(map(len, id_lists), default=0)"][bit(0) + 2 * bit(1)]
    look = f"return embedding({b})" if bit(2) else f"{r} = embedding({b})\nreturn {r}"
    body = [[longest, f"{b} = torch.full((len(id_lists), {m}), pad_id, dtype=torch.long)" if bit(3) else
             f"{b} = torch.ones(len(id_lists), {m}, dtype=torch.long) * pad_id",
             f"for {r}, {i} in enumerate(id_lists):", f"    {b}[{r}, :len({i})] = torch.tensor({i}, dtype=torch.long)",
             look],
            [longest, f"{b} = [{i} + [pad_id] * ({m} - len({i})) for {i} in id_lists]" + _comment(s, "pad right"),
             f"{b} = torch.tensor({b})" if bit(3) else f"{b} = torch.LongTensor({b})", look],
            [f"{b} = [torch.tensor({i}, dtype=torch.long) for {i} in id_lists]",
             f"{b} = nn.utils.rnn.pad_sequence({b}, batch_first=True, padding_value=pad_id)", look],
            [longest, f"{b} = []", f"for {i} in id_lists:", f"    {r} = list({i})", f"    while len({r}) < {m}:",
             f"        {r}.append(pad_id)" if bit(3) else f"        {r} += [pad_id]", f"    {b}.append({r})",
             f"{b} = torch.tensor({b})", look]][a]
    return _cell(s, "q3_embed_batch", {"embed_batch": body})


def q4(s: Student) -> str:
    g, r, k = s.names[3:6]
    a, bit = s.approach["q4"], lambda n: _bit(s, "q4", n)
    reset = ["embedding.weight.grad = None" if bit(0) else "embedding.zero_grad()"]
    backward = ["loss_fn(embedding(ids)).backward()"] if bit(1) else [f"{g} = loss_fn(embedding(ids))",
                                                                      f"{g}.backward()"]
    grad = "embedding.weight.grad" if bit(2) else f"{k}"
    alias = [] if bit(2) else [f"{k} = embedding.weight.grad"]
    body = [reset + backward + alias + [f"{r} = ({grad} != 0).any(dim=1)" if bit(3) else
                                        f"{r} = {grad}.ne(0).any(-1)",
                                        f"return {r}.nonzero().flatten().tolist()" if bit(4) else
                                        f"return [int({k}) for {k} in torch.nonzero({r})]"],
            reset + backward + [f"{r} = []", f"for {k} in range(embedding.weight.shape[0]):",
                                f"    if torch.any(embedding.weight.grad[{k}] != 0):" if bit(3) else
                                f"    if embedding.weight.grad[{k}].abs().sum() > 0:", f"        {r}.append({k})",
                                f"return {r}"],
            ["if embedding.weight.grad is not None:", "    embedding.weight.grad.zero_()"] + backward +
            [f"{r} = embedding.weight.grad.abs().sum(dim=1)",
             f"return [{k} for {k} in range(len({r})) if {r}[{k}] > 0]" if bit(3) else
             f"return [{k} for {k}, {g} in enumerate({r}.tolist()) if {g}]"],
            reset + backward + [f"{r} = torch.where(embedding.weight.grad.abs().sum(1) > 0)[0]",
                                f"return sorted(int({k}) for {k} in {r})" if bit(3) else f"return {r}.tolist()"]][a]
    return _cell(s, "q4_rows_with_gradient", {"rows_with_gradient": body})


def q5(s: Student) -> str:
    t = s.names[7]
    a = s.approach["q5"]
    body = [["return nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)"],
            [f"{t} = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)", f"return {t}"],
            [f"{t} = nn.Embedding(num_embeddings=vocab_size, embedding_dim=embedding_dim, padding_idx=pad_id)",
             "with torch.no_grad():", f"    {t}.weight[pad_id].fill_(0.0)", f"return {t}"]][a]
    return _cell(s, "q5_make_embedding", {"make_embedding": body})


def q6(s: Student) -> str:
    n, p, m, x = s.names[8:12]
    a, bit = s.approach["q6"], lambda i: _bit(s, "q6", i)
    sets = [f"{n} = set(second.flatten().tolist())" if bit(1) else f"{n} = {{int({x}) for {x} in second.view(-1)}}",
            f"{p} = set(first.flatten().tolist())" if bit(1) else f"{p} = {{int({x}) for {x} in first.view(-1)}}"]
    if bit(0):
        sets.reverse()
    drop = [f"{m}.discard(padding_idx)", f"return sorted({m})"] if bit(2) else \
        [f"return sorted({x} for {x} in {m} if {x} != padding_idx)"]
    body = [sets + ['if optimizer == "sgd":', f"    {m} = {n}", 'elif optimizer in ("momentum", "adam"):',
                    f"    {m} = {n} | {p}" + _comment(s, "momentum remembers"), 'elif optimizer == "adamw":',
                    f"    {m} = set(range(num_rows))", "else:", "    raise ValueError(optimizer)"] + drop,
            sets + [f"{x} = {{", f'    "sgd": {n},', f'    "momentum": {n}.union({p}),', f'    "adam": {n}.union({p}),',
                    '    "adamw": set(range(num_rows)),', "}", f"return sorted({x}[optimizer] - {{padding_idx}})"],
            sets + ["match optimizer:", '    case "sgd":', f"        {m} = {n}", '    case "momentum" | "adam":',
                    f"        {m} = {n} | {p}", "    case _:", f"        {m} = set(range(num_rows))"] + drop,
            [f"{m} = []", f"for {x} in range(num_rows):", f"    if {x} == padding_idx:", "        continue",
             f"    if optimizer == \"adamw\" or {x} in second or (optimizer != \"sgd\" and {x} in first):",
             f"        {m}.append({x})", f"return {m}"]][a]
    return _cell(s, "q6_predict_moved_rows", {"predict_moved_rows": body})


APPROACHES = {"q1": 4, "q2": 4, "q3": 4, "q4": 4, "q5": 3, "q6": 4}
CODE = [q1, q2, q3, q4, q5, q6]
_STUBS: dict[str, str] = {}


def stub(grade_id: str) -> str:
    """The released stub of an answer cell."""
    if not _STUBS:
        for cell in json.loads(LAB.read_text(encoding="utf-8"))["cells"]:
            if "grade_id" in nbgrader_meta(cell):
                _STUBS[nbgrader_meta(cell)["grade_id"]] = cell_source(cell)
    return _STUBS[grade_id]


#: What students leave in their code besides the answer: checks, debugging, intermediate names.
QUIRKS = ["print({p})", "print(\"debug\", len({p}))", "assert {p} is not None", "{q} = {p}", "# print({p})",
          "if {p} is None:\n    raise ValueError(\"no {p}\")", "print(type({p}))", "assert len({p}) >= 0",
          "{q} = None", "pass"]


def _quirk(s: Student, name: str, function: str, lines: list[str]) -> list[str]:
    """Add the student's own habits to a function body: up to two extra statements between its statements."""
    rng = random.Random(f"{s.quirks}-{name}")
    parameter = re.search(r"\((\w+)", function).group(1)
    for _ in range(rng.randrange(3)):
        tops = [i for i, line in enumerate(lines) if not line.startswith((" ", "else", "elif", "except", "}"))]
        where = rng.choice(tops)
        extra = rng.choice(QUIRKS).format(p=parameter, q=rng.choice(s.names))
        lines[where:where] = extra.split("\n")
    return lines


def _cell(s: Student, grade_id: str, bodies: dict[str, list[str]]) -> str:
    """The stub with each function's `raise NotImplementedError(...)` replaced by the student's body, the
    functions in the student's order, indented and spaced their way."""
    parts = re.split(r"(?m)^(?=def )", stub(grade_id))
    head, functions = parts[0], parts[1:]
    filled = []
    for function in functions:
        name = re.match(r"def (\w+)", function).group(1)
        lines = _quirk(s, name, function, [line for body in bodies[name] for line in body.split("\n")])
        code = "\n".join("    " + line for line in lines)
        filled.append(re.sub(r"(?m)^    raise NotImplementedError\(.*\)$", lambda _: code, function).rstrip() + "\n")
    if s.order:
        filled.reverse()
    text = head.rstrip() + "\n\n\n" + ("\n\n" + "\n" * s.blank).join(filled)
    if s.indent == 2:
        text = re.sub(r"(?m)^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), text)
    return text


# ------------------------------------------------------------------------------------------------- written

IDEAS = {
    "w1_min_freq": [
        ["{A higher|Raising|Increasing|A bigger} min_freq {shrinks|reduces|cuts} the vocabulary {a lot|sharply|"
         "considerably|quickly}", "with a larger threshold {far fewer|fewer|much fewer} word types {stay|are kept|"
         "survive}", "the number of {types|distinct words} {drops|falls} {fast|steeply} as {the cutoff|min_freq} "
         "{grows|goes up}"],
        ["{since|because|as} {most|many} {words|types} are rare {and appear only once|in the corpus|in a corpus}",
         "{Zipf's law means|by Zipf} the {long tail|tail} of rare words is {huge|most of the types}",
         "{half|a big part} of the {types|vocabulary} {occur|show up} {once|one time} {only|}"],
        ["{so|and so|therefore} the embedding {table|matrix} {gets smaller|needs fewer rows|uses less memory}",
         "{fewer parameters|less memory} {is|are} needed for the {table|embeddings}",
         "{training|the model} {gets|becomes} {cheaper|faster} {with a small table|since there are fewer rows}"],
        ["{but|however} more tokens {in new text|at test time|in the dev set} become [UNK]",
         "{the cost is that|on the other hand} {unknown|out of vocabulary} words {lose|throw away} their meaning",
         "{the downside|the trade-off}: {the share of|more} [UNK] {rises|goes up} {on dev|in unseen reviews}"],
    ],
    "w2_unseen_rows": [
        ["{a row|an embedding row|each row} {only gets|receives} a gradient {when|if} its id {is looked up|appears} "
         "{in a batch|in the batch}", "{the gradient|backprop} {only reaches|touches only} rows that were used",
         "{only|just} the {looked-up|selected} rows {get|take part in} the {backward pass|gradient}"],
        ["{rows of|vectors for} words {never seen|that never occur} in training {never change|are never updated}",
         "{unseen|unused} rows {stay|remain} {as initialised|at their random start|random}",
         "{the optimizer|SGD} {never moves|does not touch} {them|those rows} {at all|}"],
        ["{so|thus|hence} they {keep|hold} {random|meaningless} {values|numbers}",
         "{their vectors|these embeddings} {mean nothing|carry no information}",
         "{what they hold|their content} is {just|only} {the initial noise|normal random numbers}"],
        ["{at test time|later|in use} {such a word|an unseen word} {gets|maps to} {noise|a random vector}",
         "{it is better to|one should} map them to [UNK] {instead|rather}",
         "{a model|the classifier} {reading|seeing} {it|such a word} {gets|is fed} {garbage|noise}"],
    ],
}
OWN = ["In my run {the vocabulary went from|it dropped from} {n} to {m} {words|types}.", "I {think|believe} this is "
       "{the main point|what matters}.", "{We saw this|This was shown} in {chapter 1|the lecture|the demo}.",
       "{For example|E.g.}, with min_freq={k} {only|just} {n} {types|words} {remain|are left}.", ""]


def _fill(template: str, rng: random.Random) -> str:
    return re.sub(r"\{([^{}]*)\}", lambda m: rng.choice(m.group(1).split("|")), template)


def written(question: str, rng: random.Random) -> str:
    """An answer written alone: for each idea one of several phrasings, words chosen within it, some ideas left
    out, sentences joined the student's way."""
    ideas = [rng.choice(options) for options in IDEAS[question] if rng.random() < 0.85]
    rng.shuffle(ideas)
    own = rng.choice(OWN).replace("{n}", str(rng.randrange(2000, 20000))).replace("{m}", str(rng.randrange(200, 2000)))
    sentences = [_fill(idea, rng) for idea in ideas] + [_fill(own.replace("{k}", str(rng.randrange(2, 20))), rng)[:-1]]
    joiner = rng.choice([". ", "; ", ", ", ". Also, "])
    text = joiner.join(filter(None, sentences)) + "."
    return text[0].upper() + text[1:]


def edited(text: str, rng: random.Random) -> str:
    """A copied answer with small edits: a few words swapped for synonyms, a capital or a comma changed."""
    swaps = [("the ", "this "), ("so ", "thus "), ("a lot", "a great deal"), ("words", "tokens"), (" is ", " gets "),
             (",", ""), ("never", "not ever")]
    for old, new in rng.sample(swaps, 3):
        text = text.replace(old, new, 1)
    return text.lower() if rng.random() < 0.5 else text + " That is my answer."


# ------------------------------------------------------------------------------------------------- the class


def notebook(student: Student) -> dict:
    """The released lab with the student's answer cells filled in."""
    nb = json.loads(LAB.read_text(encoding="utf-8"))
    sources = {fn.__name__: fn(student) for fn in CODE}
    for cell in nb["cells"]:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid and gid.split("_")[0] in sources:
            cell["source"] = sources[gid.split("_")[0]]
        elif gid in student.text:
            cell["source"] = student.text[gid]
    return nb


@dataclass
class Class:
    """A generated class: its students by submission name, and the planted (original, copy) pairs."""

    students: dict[str, Student]
    planted: list[tuple[str, str]]


def make_class(size: int, copies: int, seed: int = 0) -> Class:
    """`size` submissions, of which `copies` are planted copies of honest ones (each of a different original)."""
    rng = random.Random(seed)
    students = {f"student_{i:03d}": honest(rng) for i in range(size - copies)}
    originals = rng.sample(sorted(students), copies)
    planted = []
    for number, original in enumerate(originals):
        name = f"student_{size - copies + number:03d}"
        students[name] = copied(students[original], rng)
        planted.append(tuple(sorted((original, name))))
    names = sorted(students)
    shuffled = dict(zip(names, rng.sample(names, len(names))))  # copies are not the last names
    students = {shuffled[n]: s for n, s in students.items()}
    planted = [tuple(sorted((shuffled[a], shuffled[b]))) for a, b in planted]
    return Class(students, planted)


def write_class(klass: Class, folder: Path, out: Path) -> None:
    """Each submission as a notebook file in `folder`, and a grading output folder `out` whose record holds the
    written answers (as `grade` records them) and whose CSVs `publish` wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = parse_lab("lab1", LAB.parents[2] / "solutions" / "lab1" / "lab1.ipynb")
    questions = [{"id": q.id, "points": q.points, "kind": q.kind} for q in lab.questions]
    results = {}
    for name, student in klass.students.items():
        (folder / f"{name}.ipynb").write_text(json.dumps(notebook(student), indent=1), encoding="utf-8")
        rows = [{"question": q["id"], "score": q["points"], "max_score": q["points"], "status": "passed",
                 "message": ""} if q["kind"] == "test" else
                {"question": q["id"], "score": 0.0, "max_score": q["points"], "status": "needs-reading",
                 "message": student.text[q["id"]], "answer": student.text[q["id"]]} for q in questions]
        results[name] = {"status": "needs-reading", "message": "", "score": 0.0, "max_score": lab.max_score,
                         "questions": rows, "id": "", "late": False, "settings": "test"}
    record = Record("lab1", questions, None, sorted(results), sorted(results), results)
    out.mkdir(parents=True, exist_ok=True)
    record.save(out)
    publish(out, record)
