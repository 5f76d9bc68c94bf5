"""Spotting messages that need crisis resources, and the resources a clinic lists per country.

Pure: no Telegram, no database, no network, no model. Detection is a curated set of regular
expressions over a normalised copy of the text, tuned to lean towards alarming: a missed
crisis costs far more than a needless list of helplines. English only.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

CrisisCategory = Literal["medical", "suicide", "self_harm"]

# --- Normalisation -------------------------------------------------------------------------

# Apostrophes are deleted, not spaced, so "don't", "don’t" and "dont" all read "dont".
_APOSTROPHES = str.maketrans("", "", "'’‘ʼ`´")
# Anything that is neither a word character, a space nor punctuation we rely on (clause ends,
# commas that end a negation's reach, hyphens in "self-harm") becomes a space: emoji, quotes.
_NOISE = re.compile(r"[^\w\s,.!?;-]")
# Chat spellings and spelled-out negations, rewritten to the one form the patterns use.
_SPELLINGS = {
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "abt": "about",
    "bc": "because",
    "cuz": "because",
    "rn": "right now",
    "idk": "i dont know",
    "u": "you",
    "i am": "im",
    "do not": "dont",
    "does not": "doesnt",
    "did not": "didnt",
    "cannot": "cant",
    "can not": "cant",
    "will not": "wont",
    "would not": "wouldnt",
    "is not": "isnt",
    "are not": "arent",
    "was not": "wasnt",
    "have not": "havent",
    "has not": "hasnt",
}
_SPELLING = re.compile(r"\b(" + "|".join(sorted(_SPELLINGS, key=len, reverse=True)) + r")\b")
# Each sentence is judged on its own so that "I'm not suicidal. I want to die." still alarms;
# "but" starts a new clause too: "not suicidal but I want to die".
_CLAUSE_BREAK = re.compile(r"[.!?;\n]+|\bbut\b")


def normalise(text: str) -> str:
    """Casefolded, accent-free, apostrophe-free text with chat spellings expanded."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = _NOISE.sub(" ", plain.casefold().translate(_APOSTROPHES))
    folded = re.sub(r"[^\S\n]+", " ", folded)
    return _SPELLING.sub(lambda match: _SPELLINGS[match.group(1)], folded).strip()


def _clauses(normalised: str) -> list[str]:
    return [clause.strip() for clause in _CLAUSE_BREAK.split(normalised) if clause.strip()]


# --- Crisis patterns -----------------------------------------------------------------------
# Written against normalised text: lowercase, no apostrophes ("dont", "im", "cant"), single
# spaces, "want to" for "wanna", "going to" for "gonna".


@dataclass(frozen=True)
class _Rule:
    category: CrisisCategory
    pattern: re.Pattern[str]
    # About another person: not raised when the clause is about a film, book or song.
    about_others: bool = False


def _rules(category: CrisisCategory, *patterns: str, about_others: bool = False) -> list[_Rule]:
    return [_Rule(category, re.compile(pattern), about_others) for pattern in patterns]


# Common misspellings too: sucidal, suicidial, suiside, suicde.
_SUICIDE = r"su(?:ic|c|is|s)i?d(?:e|al|ial|ality)"
_DRUG = (
    r"(?:pills?|tablets?|meds|medications?|medicines?|capsules?|doses?|ketamine|k|esketamine"
    r"|spravato|benzos?|xanax|valium|klonopin|ativan|lorazepam|diazepam|clonazepam|alprazolam"
    r"|opioids?|oxy\w*|fentanyl|heroin|tylenol|paracetamol|acetaminophen|ibuprofen|advil"
    r"|aspirin|painkillers?|antidepressants?|lithium|insulin)"
)
_EXCESS = (
    r"(?:(?:way |far )?too (?:many|much)|all(?: of)?(?: my| the| of my)?"
    r"|an? (?:whole |full |entire )?(?:bottle|pack|packet|box|strip|handful|fistful) of"
    r"|double|triple|twice|extra|lots of|a lot of|loads of)"
)
_INTAKE = r"(?:took|take|takes|taking|taken|swallowed|swallow|swallowing|had|used|snorted|popped)"
_SELF_HARM_ACT = (
    r"(?:cut|cutting|cuts|burn|burned|burnt|burning|hurt|hurting|harm|harming|hit|hitting"
    r"|punch\w*|stab\w*|slash\w*|scratch\w*|starv\w*|strangl\w*|injur\w*|mutilat\w*)"
)
_BODY = r"(?:arms?|wrists?|legs?|thighs?|skin|stomach|hips?|body|face)"

_CRISIS_RULES: tuple[_Rule, ...] = (
    # Medical first: when a message is both, the urgent answer is emergency services.
    *_rules(
        "medical",
        # An overdose by intake: "took all my pills", "swallowed a bottle of tylenol".
        rf"\b{_INTAKE} (?:\w+ )?{_EXCESS} (?:\w+ ){{0,2}}{_DRUG}\b",
        r"\bmore (?:\w+ ){0,3}than (?:prescribed|i was told|i should|recommended|allowed)\b",
        r"\b(?:took|taken|swallowed) (?:way |far )?too (?:many|much)$",
        r"\b(?:i|ive|im|he|she|they|hes|shes|theyre|someone|my \w+)(?: \w+)?"
        r" (?:just )?(?:overdosed|overdosing|od|odd|oded|odding)\b",
        r"\b(?:having|had) an (?:overdose|od)\b",
        r"\b(?:lethal|fatal|deadly) (?:dose|amount|overdose)\b",
        # Breathing, heart and consciousness, in the present tense: "couldnt breathe" is
        # nearly always a memory of the session or of laughing.
        r"\b(?:cant|unable to|struggling to|hard to|trouble) breath(?:e|ing)?\b",
        r"\b(?:not|isnt|barely|stopped|no longer) breathing\b",
        r"\bchest (?:pains?|hurts|is (?:\w+ )?(?:tight|hurting|crushing|heavy)"
        r"|feels? (?:\w+ )?(?:tight|crushed|crushing))\b",
        r"\b(?:having|im having|is having) an? (?:heart attack|stroke|seizure|fit)\b",
        r"\b(?:is|are|im|hes|shes|theyre|keeps) (?:seizing|convulsing|turning blue)\b",
        r"\b(?:is|are|im|hes|shes|theyre|went|lying|knocked|found \w+)(?: still)? unconscious\b",
        r"\b(?:unresponsive|not responding|wont respond|isnt responding|not waking up"
        r"|isnt waking up|wont wake up|cant wake (?:him|her|them|my \w+))\b",
        r"\bcollapsed\b",
        r"\b(?:im|feel like im|think im|feels like im) (?:going to|about to)"
        r" (?:faint|pass out|black out|collapse)\b",
        r"\b(?:throwing up|vomiting|coughing up) blood\b",
        r"\b(?:need|needs|call|calling|get|send) (?:an |the )?(?:ambulance|paramedics)\b",
    ),
    *_rules(
        "suicide",
        # Saying it outright, in any spelling or slang.
        r"\b(?:kill|killing|kills|hang|hanging|shoot|shooting|drown|drowning) myself\b",
        r"\b(?:end|ending|take|taking) my (?:own )?life\b",
        r"\b(?:kms|unaliv\w*|s[eu]wer ?slide\w*)\b",
        rf"\b{_SUICIDE}\b",
        # Wanting to die or to be dead, and not wanting to live, exist or wake up.
        r"\b(?:want|wants|wanted|wanting|wish|ready|deserve|trying|need|planning) to die\b",
        r"\b(?:wish|want|wanted) (?:i |to )?(?:was|were|be|could be) dead\b",
        r"\bbetter off dead\b",
        r"\bwish (?:i|id) (?:had )?(?:never|not|wasnt|werent) (?:been )?born\b",
        r"\b(?:dont|doesnt|never|no longer|not sure (?:if |whether )?i|dont know if i"
        r"|dont think i)(?: really| even| still)? (?:want|wish|care) to (?:live|exist|be alive"
        r"|stay alive|be here|be around|keep living|go on|keep going|wake up|survive)\b",
        r"\bif i (?:just )?(?:didnt|wasnt|werent|never|dont) (?:exist|around|here|alive"
        r"|wake up|woke up)\b",
        r"\b(?:want|wanted|wanting|wish|wishing|need)\b(?: \w+){0,3} (?:not exist|stop existing"
        r"|cease to exist|disappear|vanish|sleep forever|asleep forever|not wake up)\b",
        r"\bnever wake up\b",
        r"\b(?:sleep|asleep)(?: \w+){0,4} not wake up\b",
        # No reason to go on.
        r"\b(?:no|nothing|zero|no more)(?: \w+)? (?:reasons?|point|purpose) (?:to|in|of|for)"
        r" (?:live|living|life|being alive|staying alive|be alive|going on|go on|keep going)\b",
        r"\bnothing (?:\w+ )?to live for\b",
        r"\b(?:not|isnt|wasnt|aint|never) worth living\b",
        r"\bwhats the point (?:of|in) (?:living|life|being alive|going on|existing)\b",
        r"\b(?:dont|cant) see (?:the|any) point (?:of|in) (?:living|life|being alive|going on"
        r"|carrying on|existing)\b",
        r"\bwhy (?:am i|im|do i|should i)(?: even| still)* (?:alive|living|exist)\b",
        r"\b(?:tired|sick|exhausted|done) (?:of|with) (?:living|being alive|life|existing"
        r"|it all)\b",
        # Being a burden that others would be rid of.
        r"\b(?:better|happier|easier) (?:off )?without me\b",
        r"\bbetter off if i (?:was|were|wasnt|werent|died|disappeared)\b",
        r"\b(?:no ?one|nobody)(?: would| will)(?: even| really)? (?:miss me|notice if i"
        r"|care if i)\b",
        # Ending it: the common euphemism, and wanting everything to stop.
        r"\b(?:end|ending|ended) (?:it all|it|things|everything)\b",
        r"\b(?:want|wanted|wish|need) (?:it all|everything|all of (?:it|this)|my life|life)"
        r" to (?:end|stop|be over)\b",
        # Not being able to stay safe.
        r"\b(?:cant|dont think i can|not sure i can|unable to|dont know if i can"
        r"|dont know how to) (?:keep myself safe|stay safe|stay alive|keep myself alive"
        r"|keep going|go on|survive (?:this|tonight|much longer))\b",
        r"\bdont trust myself (?:to (?:stay|be|keep) (?:safe|alive)|with (?:the |my |a )?"
        r"(?:knives|knife|pills|meds|razors?|blades?|gun|rope)|alone|tonight|around)\b",
        r"\b(?:scared|afraid|worried) (?:of|about) what i (?:might|will|could) do"
        r"(?: to myself|$)",
        # Thinking about a method, planning, preparing.
        r"\b(?:think|thinking|thought|thoughts|picturing|pictured|imagining|imagined"
        r"|visuali[sz]\w*|urges?) (?:about |of )?(?:myself )?(?:jumping|hanging|overdosing"
        r"|slitting|crashing my car|driving (?:my car |the car )?(?:into|off)"
        r"|stepping in front of|throwing myself|taking all my)\b",
        r"\b(?:fantasi[sz]\w*|planning|plan|plans|planned|longing for|yearning for"
        r"|praying for) (?:about |of )?(?:my (?:own )?death|death|dying|my funeral)\b",
        r"\bhow (?:many|much) (?:\w+ ){0,3}(?:pills|tablets|meds|medication|of my \w+)\b"
        r"(?: \w+){0,4} (?:take|kill|die|overdose|lethal)\b",
        r"\b(?:research\w*|look\w* up|looked up|googl\w*|search\w*) (?:\w+ ){0,3}"
        r"(?:ways to|how to) (?:die|kill myself|end it|overdose)\b",
        r"\b(?:saving|saved|stockpil\w*|hoard\w*|collecting) (?:up )?(?:my |all my |some )?"
        r"(?:pills|meds|tablets|medication)\b",
        r"\b(?:pills|meds|tablets|medication) (?:\w+ ){0,2}(?:saved up|stockpiled|hoarded"
        r"|lined up|in my hand|in front of me)\b",
        r"\b(?:wrote|writing|write|written|left|leave|leaving|drafted) (?:a |my |some )?"
        rf"(?:goodbye|farewell|{_SUICIDE}) (?:letters?|notes?|messages?|texts?)\b",
    ),
    # Someone else in danger now; their past is not the writer's crisis.
    *_rules(
        "suicide",
        r"\b(?:want|wants|wanted|going|plans?|planning|about|threaten\w*|trying|decided|will)"
        r" (?:to )?(?:kill|hurt|harm|end) (?:himself|herself|themselves|themself"
        r"|(?:his|her|their) (?:own )?life)\b",
        about_others=True,
    ),
    *_rules(
        "self_harm",
        rf"\b{_SELF_HARM_ACT} (?:myself|my (?:own )?{_BODY})\b",
        r"\bself ?-? ?(?:harm\w*|injur\w*|mutilat\w*)\b",
        r"\b(?:start|started|starting|back to|relaps\w*|began) (?:\w+ )?(?:cutting"
        r"|burning myself|self ?-? ?harming)\b",
        r"\burges? (?:to|of) (?:cut|burn|hurt|harm|self ?-? ?harm|hit|scratch|punch)\b",
        r"\buntil (?:it|they|i|my \w+) (?:bleeds?|bled|bruised?|scarred)\b",
    ),
)

# --- What keeps a match from alarming -------------------------------------------------------

# Idioms and metaphors that overlap a crisis pattern; a match they overlap does not count.
_BENIGN_OVERLAPS = tuple(
    re.compile(pattern)
    for pattern in (
        # Overwork and other idioms built on "killing myself", "shoot myself", "drown myself".
        r"\bkilling myself (?:at (?:work|the gym|my job)|over (?:this|that|the|a|my) \w+"
        r"|working|to (?:meet|hit|finish|get|make|keep up|please))\b",
        r"\bshoot(?:ing)? myself in the foot\b",
        r"\bdrown(?:ing)? myself in\b",
        r"\btak\w* my (?:own )?life back\b",
        # Dying of embarrassment or laughter.
        r"\bdie (?:of|from) (?:embarrassment|shame|laugh\w*|cringe|boredom|happiness|joy)\b",
        # Ending a relationship or a conversation, not a life.
        r"\bend\w* (?:it|things|everything) (?:with|between|there|early|off|for (?:the day|today"
        r"|now)|on a)\b",
        # Going on with an activity, being somewhere: "dont want to be here at this job".
        r"\b(?:go on|keep going|be here|be around|wake up|going on|carrying on)"
        r" (?:with|to|on|at(?! all)|in|for|like|a|an|the|this|that|my|early)\b",
        r"\b(?:disappear|vanish) (?:into|to|for|from|in)\b",
        r"\b(?:living|life|existing) (?:in|with|at|like|on|under|as|of)\b",
        r"\bwithout me (?:as|in|on|at|for|there)\b",
        r"\b(?:letters?|notes?|messages?) to (?:my |the )?(?:old|past|former|younger|inner"
        r"|future)\b",
        r"\bjumping (?:into|in(?! front)|at|on|ship|for|back|rope)\b",
        # Cutting back, cutting ties, cutting myself some slack, a haircut.
        r"\bcut(?:ting)? (?:myself )?(?:back|down|out|off|ties|corners|costs|it close|the cord"
        r"|some slack|slack|my hair|hair|my fringe|my nails)\b",
        # Accidents: shaving, cooking, sport.
        r"\b(?:cut|burn\w*|hurt|hurting|harm\w*|hit|hitting|injur\w*|scratch\w*)"
        r" (?:myself|my \w+)(?: \w+){0,3}? (?:shaving|cooking|chopping|slicing|baking"
        r"|gardening|by accident|accidentally|on (?:the|a) (?:oven|stove|pan|iron|kettle|grill"
        r"|glass|paper|can|knife|tray|fence|door)|at the gym|at work|working out|running"
        r"|playing|lifting|while)\b",
        r"\b(?:accidentally|by accident) (?:\w+ )?(?:cut|burn\w*|hurt|hit|scratch\w*)\b",
        # Hyperbole and the body's ordinary responses to emotion.
        r"\blaugh\w*(?: \w+){0,4} cant breathe\b",
        r"\bcant breathe (?:from|with|for) (?:laugh\w*|excitement)\b",
        r"\bbreathing (?:deeply|properly|right|correctly|through|into|in)\b",
        r"\bchest (?:\w+ )?(?:\w+ )?(?:tight|heavy) with (?:emotion|grief|sadness|love|joy)\b",
        r"\b(?:nearly|almost|practically) (?:had|having) an? (?:heart attack|stroke)\b",
        r"\bcollapsed (?:into|onto|on|in|with)\b",
    )
)

# A negation shortly before a match: "not suicidal", "no thoughts of hurting myself",
# "would never hurt myself". Uncertainty is not negation: "not sure", "dont think", "no one".
_NEGATION = re.compile(
    r"\b(?:not(?! sure| certain)|never|no(?! one| longer want)|nor|without|dont(?! know| think)"
    r"|doesnt|didnt|wont|wouldnt|havent|hasnt|hadnt|isnt|arent|wasnt|werent"
    r"|asked (?:me |us )?(?:if|whether))\b"
)
# A negation reaches back only to the previous comma or conjunction.
_NEGATION_REACH = re.compile(r",|\b(?:and|so|because|then|though|although|while)\b")
_NEGATION_WORDS = 4
# A clause about the writer's own, resolved past: "used to", "as a teenager", "years ago",
# "before I started ketamine", "the thoughts have gone".
_RESOLVED_PAST = re.compile(
    r"\b(?:used to|when i was (?:a |\d)|as a (?:kid|child|teen\w*)|years ago|in my (?:teens"
    r"|twenties|thirties|\d0s)|before (?:i started|starting|ketamine|treatment|the infusions"
    r"|the sessions)|now im (?:\w+ )?not|(?:have|has) (?:\w+ )?(?:gone|stopped|faded|lifted"
    r"|eased|disappeared))\b"
)
# ...unless it is coming back.
_RECURRENCE = re.compile(
    r"\b(?:again|back|returned|returning|creeping|relaps\w*|lately|tonight|today|anymore)\b"
)
_MEDIA = re.compile(
    r"\b(?:movie|film|book|novel|show|series|documentary|song|lyrics|podcast|episode"
    r"|character|article|play)\b"
)


def _negated(clause: str, start: int) -> bool:
    before = _NEGATION_REACH.split(clause[:start])[-1]
    return _NEGATION.search(" ".join(before.split()[-_NEGATION_WORDS:])) is not None


def _counts(rule: _Rule, clause: str, match: re.Match[str]) -> bool:
    start, end = match.span()
    if any(
        guard_start < end and start < guard_end
        for guard in _BENIGN_OVERLAPS
        for guard_start, guard_end in (found.span() for found in guard.finditer(clause))
    ):
        return False
    if _negated(clause, start):
        return False
    if rule.about_others and _MEDIA.search(clause):
        return False
    return not (_RESOLVED_PAST.search(clause) and not _RECURRENCE.search(clause))


def crisis_category(text: str) -> CrisisCategory | None:
    """The kind of crisis the text expresses ("medical" first when several), or None."""
    try:
        clauses = _clauses(normalise(text))
    except (TypeError, ValueError):
        return None
    for rule in _CRISIS_RULES:
        for clause in clauses:
            if any(_counts(rule, clause, match) for match in rule.pattern.finditer(clause)):
                return rule.category
    return None


def is_crisis(text: str) -> bool:
    """True when the text expresses suicidal thoughts, self-harm or a medical emergency."""
    return crisis_category(text) is not None


# --- Resources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    name: str
    contact: str
    note: str = ""


@dataclass(frozen=True)
class CrisisResources:
    default: tuple[Resource, ...]
    by_country: dict[str, tuple[Resource, ...]]

    def for_country(self, country: str | None) -> list[Resource]:
        """The list for an ISO 3166 country code (any case), else the default list."""
        key = (country or "").strip().upper()
        return list(self.by_country.get(key, self.default))


_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_RESOURCE_FIELDS = {"name", "contact", "note"}


def _parse_resources(raw: object, where: str, problems: list[str]) -> tuple[Resource, ...]:
    if not isinstance(raw, dict) or set(raw) != {"resources"}:
        problems.append(f"{where}: must hold only resources = [ ... ]")
        return ()
    entries = raw["resources"]
    if not isinstance(entries, list) or not entries:
        problems.append(f"{where}: resources must be a non-empty list")
        return ()
    parsed: list[Resource] = []
    for index, entry in enumerate(entries, start=1):
        here = f"{where} resource {index}"
        if not isinstance(entry, dict):
            problems.append(f"{here}: must be {{ name = ..., contact = ... }}")
            continue
        before = len(problems)
        for unknown in sorted(set(entry) - _RESOURCE_FIELDS):
            problems.append(f"{here}: unknown field {unknown!r}")
        for field in ("name", "contact"):
            value = entry.get(field)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{here}: {field} is missing")
        note = entry.get("note", "")
        if not isinstance(note, str):
            problems.append(f"{here}: note must be text")
        if len(problems) == before:
            parsed.append(Resource(entry["name"].strip(), entry["contact"].strip(), note.strip()))
    return tuple(parsed)


def load_resources(path: Path) -> CrisisResources:
    """Read and check the resources file; raise ValueError with one line per problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: not valid TOML: {exc}") from None
    problems = [
        f"{path.name}: unknown top-level table {unknown!r}"
        for unknown in sorted(set(data) - {"default", "country"})
    ]
    if "default" in data:
        default = _parse_resources(data["default"], f"{path.name} [default]", problems)
    else:
        problems.append(f"{path.name}: [default] is missing (shown when a country has no entry)")
        default = ()
    countries = data.get("country", {})
    if not isinstance(countries, dict):
        problems.append(f"{path.name}: country must be tables like [country.US]")
        countries = {}
    by_country: dict[str, tuple[Resource, ...]] = {}
    for code, raw in countries.items():
        where = f"{path.name} [country.{code}]"
        if not _COUNTRY_CODE.fullmatch(code):
            problems.append(f"{where}: not an ISO 3166 country code (two capitals, e.g. US)")
            continue
        by_country[code] = _parse_resources(raw, where, problems)
    if problems:
        raise ValueError("\n".join(problems))
    return CrisisResources(default=default, by_country=by_country)


def _tzdata_text(name: str) -> str | None:
    try:
        return resources.files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def _table_rows(text: str | None) -> list[list[str]]:
    if text is None:
        return []
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def _country_by_zone() -> dict[str, str]:
    # zone1970.tab lists every country a zone covers ("DE,DK,NO,SE,SJ" for Europe/Berlin),
    # the most populous first. zone.tab gives one country per zone and also lists zones that
    # are now links (Europe/Copenhagen: DK), so it wins where present; zone1970.tab covers a
    # future tzdata that drops the deprecated zone.tab.
    countries = {row[2]: row[0].split(",")[0] for row in _table_rows(_tzdata_text("zone1970.tab"))}
    countries.update({row[2]: row[0] for row in _table_rows(_tzdata_text("zone.tab"))})
    # Old names patients still type ("US/Eastern", "Asia/Calcutta") are links ("L target
    # name") in tzdata.zi. Names without an area ("CET", "GB") are not countries' names.
    for line in (_tzdata_text("tzdata.zi") or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L" and "/" in parts[2] and parts[2] not in countries:
            country = countries.get(parts[1])
            if country is not None and not parts[2].startswith("Etc/"):
                countries[parts[2]] = country
    return countries


def country_of_timezone(zone: str) -> str | None:
    """The ISO 3166 country of an IANA time zone ("Europe/Berlin" -> "DE"), or None."""
    return _country_by_zone().get(zone.strip())
