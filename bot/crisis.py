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
from string import ascii_uppercase
from typing import Literal

CrisisCategory = Literal["medical", "suicide", "self_harm"]

# --- Normalisation -------------------------------------------------------------------------

# Apostrophes are deleted, not spaced, so "don't", "don’t" and "dont" all read "dont".
_APOSTROPHES = str.maketrans("", "", "'’‘ʼ`´")
# Except in "OD'd", which would then read "odd" as in "I feel odd".
_OD_APOSTROPHE = re.compile(r"\bod['’ʼ](?:d|ed)\b")
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
    if not text.isascii():  # the decomposition is most of the cost; most messages skip it
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = _OD_APOSTROPHE.sub("overdosed", text.casefold()).translate(_APOSTROPHES)
    folded = _NOISE.sub(" ", folded)
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
_SUICIDE = r"su(?:ic|c|is|s)i?de"
_SUICIDAL = r"su(?:ic|c|is|s)i?d(?:al|ial|ality)"
_DRUG = (
    r"(?:pills?|tablets?|meds|medications?|medicines?|capsules?|doses?|ketamine|k|esketamine"
    r"|spravato|benzos?|xanax|valium|klonopin|ativan|lorazepam|diazepam|clonazepam|alprazolam"
    r"|opioids?|oxy\w*|fentanyl|heroin|tylenol|paracetamol|acetaminophen|ibuprofen|advil"
    r"|aspirin|painkillers?|antidepressants?|lithium|insulin|prescriptions?)"
)
_EXCESS = (
    r"(?:(?:way |far )?too (?:many|much)|all(?: of)?(?: my| the| of my)?"
    r"|an? (?:whole |full |entire )?(?:bottle|pack|packet|box|strip|handful|fistful|bunch) of"
    r"|double|triple|twice|extra|lots of|a lot of|loads of"
    r"|(?:\d+|two|three|four|five|ten) times(?: my| the)?|everything(?: in)?"
    r"|\d{2,}(?! ?(?:mg|ml|mcg|g|milligrams|micrograms)\b)(?: of)?(?: my)?)"
)
_INTAKE = r"(?:took|take|takes|taking|taken|swallowed|swallow|swallowing|had|used|snorted|popped)"
_SELF_HARM_ACT = (
    r"(?:cut|cutting|cuts|burn|burned|burnt|burning|hurt|hurting|harm|harming|hit|hitting"
    r"|punch\w*|stab\w*|slash\w*|scratch\w*|starv\w*|strangl\w*|injur\w*|mutilat\w*)"
)
_BODY = r"(?:arms?|wrists?|legs?|thighs?|skin|stomach|hips?|body|face)"
# Someone an emergency can happen to: not "my world collapsed" or "the deal collapsed".
_PERSON = (
    r"(?:i|ive|im|he|she|they|hes|shes|theyre|someone|somebody|my (?:\w+ )?(?:friend|partner"
    r"|husband|wife|boyfriend|girlfriend|mum|mom|mother|dad|father|son|daughter|kid|child"
    r"|brother|sister|roommate|flatmate))"
)

_CRISIS_RULES: tuple[_Rule, ...] = (
    # Medical first: when a message is both, the urgent answer is emergency services.
    *_rules(
        "medical",
        # An overdose by intake: "took all my pills", "swallowed a bottle of tylenol".
        rf"\b{_INTAKE} (?:\w+ )?{_EXCESS} (?:\w+ ){{0,2}}{_DRUG}\b",
        rf"\b{_INTAKE} (?:my |the )?(?:\w+ )?{_DRUG} (?:twice|two times|three times|double)\b",
        # A whole container, the drug often left unsaid: "took the whole bottle".
        rf"\b{_INTAKE} (?:my |the |a |an )?(?:whole|entire|full) (?:\w+ )?(?:bottle|pack|packet"
        r"|box|strip|prescription|supply|stash)\b",
        r"\bmore (?:\w+ ){0,3}than (?:prescribed|i was told|i should|recommended|allowed)\b",
        # "I took too many", the drug left unsaid: nothing follows in the clause.
        r"\b(?:took|taken|swallowed) (?:way |far )?too (?:many|much)(?! \w)",
        rf"\b{_PERSON}(?: \w+)? (?:just )?(?:overdosed|overdosing|od|oded|odding)\b",
        r"\bhaving an (?:overdose|od)\b",
        r"\b(?:lethal|fatal|deadly) (?:doses?|amounts?|overdoses?)\b",
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
        rf"\b{_PERSON}(?: \w+)? (?:just )?collapsed\b",
        r"\b(?:im|feel like im|think im|feels like im) (?:going to|about to)"
        r" (?:faint|pass out|black out|collapse)\b",
        r"\b(?:cant|unable to) get (?:enough )?air\b",
        r"\bheart (?:feels like (?:it|its|it is)|is|s) (?:going to|about to)"
        r" (?:explode|stop|burst)\b",
        r"\blips (?:are |have )?(?:going |gone |turning |turned )?blue\b",
        r"\b(?:feel|feels|feeling) like im dying\b",
        r"\b(?:throwing up|vomiting|coughing up) blood\b",
        r"\b(?:need|needs|call|calling|get|send) (?:an |the )?(?:ambulance|paramedics)\b",
    ),
    *_rules(
        "suicide",
        # Saying it outright, in any spelling or slang.
        r"\b(?:kill|killing|kills|hang|hanging|shoot|shooting|drown|drowning) myself\b",
        r"\b(?:end|ending|take|taking) my (?:own )?life\b",
        r"\b(?:kms|unaliv\w*|s[eu]wer ?slide\w*)\b",
        # "Suicidal" is about the writer unless negated; "suicide" alone is as often someone
        # else's death or a talk on prevention, so it needs a verb of thinking or doing.
        rf"\b{_SUICIDAL}\b",
        r"\b(?:think|thinking|thought|thoughts|considering|considered|contemplating|planning"
        r"|plan|plans|attempt|attempting|commit|committing|i attempted|ive attempted)"
        rf"(?: about| of)? {_SUICIDE}\b",
        rf"\b(?:{_SUICIDE}|dying|killing myself) (?:is|has been|keeps) (?:\w+ )?(?:on my mind"
        r"|in my head|coming up)\b",
        # Wanting to die or to be dead, and not wanting to live, exist or wake up.
        r"\b(?:want|wants|wanted|wanting|wish|ready|deserve|trying|need|planning|waiting)"
        r" to die\b",
        r"\b(?:going to|want to|wanted to|will|plan to|planning to|planning on|about to|might"
        r"|decided to|ready to) (?:overdose|od)\b",
        r"\b(?:wish|want|wanted) (?:i |to )?(?:was|were|be|could be) dead\b",
        r"\bbetter off dead\b",
        r"\bwish (?:i|id) (?:had )?(?:never|not|wasnt|werent) (?:been )?born\b",
        r"\b(?:dont|doesnt|never|no longer|not sure (?:if |whether )?i|dont know if i"
        r"|dont think i)(?: really| even| still)? (?:want|wish|care) to (?:live|exist|be alive"
        r"|stay alive|be here|be around|keep living|go on|keep going|wake up|survive|do life)\b",
        r"\bcant (?:be here|do life|keep living|exist) (?:anymore|any longer|any more)\b",
        r"\bif i (?:just )?(?:didnt exist|never existed|wasnt alive|werent alive|didnt wake up"
        r"|never woke up|dont wake up)\b",
        r"\b(?:want|wanted|wanting|wish|wishing|need)(?: (?:to|i|could|would|just|really|simply"
        r"|so|badly|sometimes))* (?:not exist|stop existing|stop being alive|stop living"
        r"|not be alive|cease to exist|disappear|vanish|(?:fall |go to )?sleep forever"
        r"|(?:fall )?asleep forever|not wake up)\b",
        # Nothing after it, so "I never wake up rested" is not it.
        r"\bnever wake up(?: again| ever)?(?! \w)",
        r"\b(?:sleep|asleep)(?: \w+){0,4} (?:not wake up|be done|be gone)\b",
        # No reason to go on.
        r"\b(?:no|nothing|zero|no more)(?: \w+)? (?:reasons?|point|purpose)(?: to| in| of| for)?"
        r" (?:live|living|life|being alive|staying alive|be alive|going on|go on|keep going)\b",
        r"\b(?:dont want|dont see|cant see|theres no|there is no|no) (?:a |any )?future"
        r" (?:for me|for myself)\b",
        r"\bnothing (?:\w+ )?to live for\b",
        r"\b(?:not|isnt|wasnt|aint|never) worth living\b",
        r"\bwhats the point (?:of|in) (?:living|life|being alive|going on|existing)\b",
        r"\b(?:dont|cant) see (?:the|any) point (?:of|in) (?:living|life|being alive|going on"
        r"|carrying on|existing)\b",
        r"\bwhy (?:am i|im|do i|should i)(?: even| still)* (?:alive|living|exist)\b",
        r"\b(?:tired|sick|exhausted|done) (?:of|with) (?:living|being alive|life|existing"
        r"|it all)\b",
        r"\b(?:give|giving|given|gave) up on (?:life|living)\b",
        r"\bwant out of (?:this )?(?:life|living|existence)\b",
        # Death as a wish rather than a fear: "would be a relief", "rather be dead than feel".
        r"\b(?:death|dying|being dead|not existing) would be (?:a |such a )?(?:relief|release"
        r"|blessing|mercy|easier|better)\b",
        r"\b(?:not existing|not being alive|being dead|not waking up|dying)(?: \w+){0,2}"
        r" (?:is|seems|sounds|feels) (?:so |really |very )?(?:comforting|appealing|tempting"
        r"|like a relief|nice|good)\b",
        r"\brather (?:be dead|die) than (?:feel|live|go on|keep|be|spend another)\b",
        r"\b(?:wish|hope|hoping|pray\w*) (?:that )?(?:\w+ ){1,2}(?:would|will|could)"
        r" (?:kill|hit|run over|end) me\b",
        r"\b(?:wish|wishing|hope|hoping|pray\w*) (?:that )?i (?:would |could |will )?(?:just )?"
        r"(?:die|wouldnt wake up|wont wake up|dont wake up|didnt wake up|never wake up"
        r"|never woke up)\b",
        r"\b(?:easier|better|simpler|a relief) to (?:just )?(?:not be alive|not exist|be dead|die"
        r"|not be here|not wake up)\b",
        r"\b(?:way out|escape|option|solution)\b(?: \w+){0,3} (?:dying|death|to die|suicide"
        r"|killing myself)\b",
        rf"\b(?:dying|death|{_SUICIDE}|killing myself|ending it)(?: \w+){{0,3}} (?:only|best|last)"
        r" (?:option|way out|choice|solution|escape)\b",
        # Being a burden that others would be rid of.
        r"\b(?:better|happier|easier)(?: \w+){0,2} without me\b",
        r"\b(?:world|everyone|everybody|nobody|no ?one|family)(?: \w+){0,2} (?:doesnt|dont"
        r"|wouldnt|does not|will not) need me\b(?! to| for| at)",
        r"\b(?:better off|better|happier|relieved|glad|easier|free)(?: \w+){0,2} if i"
        r"(?: just)? (?:died|disappeared|(?:was|were) (?:gone|dead|not (?:here|around|alive))"
        r"|(?:wasnt|werent) (?:here|around|alive))\b",
        r"\b(?:favou?r|relief|blessing|gift)\b(?: \w+){0,3} (?:by|if i) (?:dying|disappearing"
        r"|killing myself|ending it|not being here|being gone)\b",
        r"\b(?:no ?one|nobody)(?: would| will)(?: even| really)? (?:miss me|notice if i"
        r"|care if i)\b",
        r"\bif i (?:died|was gone|were gone|disappeared|wasnt here|wasnt around)\b(?: \w+){0,3}"
        r" (?:would|will) (?:anyone|anybody|no ?one|nobody)(?: even)? (?:care|notice|miss)\b",
        # Ending it: the common euphemism, and wanting everything to stop.
        r"\b(?:end|ending|ended) (?:it all|it|things|everything)\b",
        r"\bend (?:my|this) (?:suffering|pain) (?:for good|forever|permanently)\b",
        r"\b(?:want|wanted|wish|need) (?:it all|everything|all of (?:it|this)|my life|life)"
        r" to (?:end|stop|be over)\b",
        # Not being able to stay safe.
        r"\b(?:cant|dont think i can|not sure i can|unable to|dont know if i can"
        r"|dont know how to) (?:keep myself safe|stay safe|stay alive|keep myself alive"
        r"|keep going|go on|survive (?:this|tonight|much longer))\b",
        r"\b(?:might|going to|will|could|about to|scared ill|afraid ill|worried ill)"
        r" do something (?:stupid|drastic|dumb|permanent|i cant take back)\b",
        r"\b(?:dont think|not sure|doubt) (?:ill|i will|i can|im going to) (?:make it|survive"
        r"|get|last) (?:through )?(?:tonight|the night|another night|another day)\b",
        r"\bdont trust myself (?:to (?:stay|be|keep) (?:safe|alive)|with (?:the |my |a )?"
        r"(?:knives|knife|pills|meds|razors?|blades?|gun|rope)|alone|tonight|around)\b",
        r"\b(?:scared|afraid|worried) (?:of|about) what i (?:might|will|could) do"
        r"(?: to myself|(?! \w))",
        # Thinking about a method, planning, preparing.
        r"\b(?:think|thinking|thought|thoughts|picturing|pictured|imagining|imagined"
        r"|visuali[sz]\w*|urges?) (?:about |of )?(?:myself )?(?:jumping|hanging|overdosing"
        r"|slitting|crashing my car|driving (?:my car |the car )?(?:into|off)"
        r"|stepping in front of|throwing myself|(?:taking|using|swallowing) (?:it all|all of (?:it"
        r"|them)|all my|everything))\b",
        r"\b(?:fantasi[sz]\w*|planning|plan|plans|planned|longing for|yearning for"
        r"|praying for) (?:about |of )?(?:my (?:own )?death|death|dying|my funeral)\b",
        # How much it would take, to die or left unsaid; not "how much does it take to work".
        rf"\bhow (?:many|much) (?:\w+ ){{0,3}}(?:{_DRUG}|of my \w+)\b(?: \w+){{0,4}}"
        r" (?:take to (?:die|kill)|would take(?! \w)|kill|die|overdose|lethal|fatal"
        r"|not wake up)\b",
        r"\b(?:painless|easy|easiest|quick|quickest|best|surest) (?:way|ways|method|methods) to"
        r" (?:die|end it|kill myself)\b",
        r"\b(?:research\w*|look\w* up|looked up|googl\w*|search\w*) (?:\w+ ){0,3}"
        r"(?:ways to|how to) (?:die|kill myself|end it|overdose)\b",
        r"\b(?:jump|jumping|jumped|throw myself) (?:off|from|in front of) (?:the |a |my )?"
        r"(?:\w+ )?(?:bridge|roof|building|cliff|balcony|overpass|tower|train|truck|bus|window"
        r"|ledge)\b",
        r"\bnoose\b",
        r"\b(?:sitting|standing|stood|sat) on (?:the |a )?(?:\w+ )?(?:ledge|railing|parapet"
        r"|edge of (?:the |a )?(?:roof|bridge|cliff|building|platform))\b",
        r"\b(?:drive|driving|crash|crashing|walk|walking|step|stepping|throw myself|jump|jumping)"
        r"(?: my car)? (?:into|in front of) (?:oncoming )?(?:traffic|a train|the train|a truck"
        r"|a bus|a tree|a wall)\b",
        r"\b(?:holding|staring at|sitting with|looking at) (?:the |a |my )?(?:razor|blade|rope"
        r"|gun|bottle of pills|pills)\b",
        r"\bplann?(?:ing|ed)? (?:how|when|where) (?:i|id|ill|i would|i will|to)"
        r" (?:do it|die|end it|kill myself)\b",
        r"\b(?:rope|gun|razors?|blades?) (?:is |are )?(?:ready|loaded|tied)\b",
        r"\b(?:said|saying) (?:all )?my (?:final |last )?goodbyes\b(?! to)",
        r"\b(?:saving|saved|stockpil\w*|hoard\w*|collecting) (?:up )?(?:my |all my |some )?"
        r"(?:pills|meds|tablets|medication)\b",
        r"\b(?:pills|meds|tablets|medication) (?:\w+ ){0,2}(?:saved up|stockpiled|hoarded"
        r"|lined up|in my hand|in front of me)\b",
        r"\b(?:wrote|writing|write|written|left|leave|leaving|drafted) (?:a |my |some )?"
        rf"(?:goodbye|{_SUICIDE}) (?:letters?|notes?)\b",
    ),
    # Someone else in danger now; their past is not the writer's crisis.
    *_rules(
        "suicide",
        r"\b(?:want|wants|wanted|going|plans?|planning|about|threatens|threatening|trying"
        r"|decided|will)"
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
        r"\buntil (?:it|they|i|my \w+) (?:bleeds?|bled|bruised?|scarred|saw stars)\b",
        # Hurting a part of myself "on purpose", however it is worded.
        r"\b(?:hit|hitting|bang\w*|burn\w*|cut\w*|scratch\w*|punch\w*|bit|biting)(?: \w+){0,2}"
        r" (?:myself|my \w+)\b(?:[ ,]+\w+){0,8}[ ,]+(?:on purpose|deliberately|intentionally)\b",
        # "I cut again", "cut deeper": how people who self-harm talk about it; "that cut deep"
        # (an insult) has no "I".
        r"\b(?:i|ive|i have)(?: \w+)? cut (?:again|deeper|too deep)\b",
        # Starving as punishment: self-harm, and a medical risk in its own right.
        r"\b(?:not eaten|havent eaten|not eating|stopped eating) (?:anything )?(?:for|in)"
        r" (?:days|\d+ days|a week|weeks)\b",
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
        r"\bhurting myself (?:with|by) (?:all )?(?:this |that |my )?(?:over\w+|work\w*|stress\w*"
        r"|worry\w*|thinking)\b",
        r"\btak\w* my (?:own )?life back\b",
        # Kilometres.
        r"\b(?:\d+|a few|few|a couple of|many|several|some) kms\b",
        # Dying of embarrassment or laughter.
        r"\b(?:die|dying) (?:of|from) (?:embarrassment|shame|laugh\w*|cringe|boredom"
        r"|happiness|joy)\b",
        # Ending a relationship or a conversation, not a life.
        r"\bend\w* (?:it|things|everything) (?:with|between|there|early|off|for (?:the day|today"
        r"|now)|on a)\b",
        # Going on with an activity, being somewhere: "dont want to be here at this job".
        r"\b(?:go on|keep going|be here|be around|wake up|going on|carrying on)"
        r" (?:with|to|on|at(?! all)|in|for|like|a|an|the|this|that|my|early|before|until|till"
        r"|by)\b",
        r"\b(?:disappear|vanish) (?:into|to|for|from|in)\b",
        # Living somewhere or somehow, but not "in this world".
        r"\b(?:live|living|life|existing) (?:in(?! this world| the world)|with|at|on(?! this"
        r" (?:earth|planet))|under|as)\b",
        r"\b(?:living|life|existing) (?:like|of)\b",
        r"\bwithout me (?:as|in|on|at|for|there|(?!being)\w+ing)\b",
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
        # Breathwork instructions; "not breathing properly" still alarms.
        r"\bbreathing (?:deeply|through|into|in)\b",
        # A generic "it can make you feel like you cant breathe", not the writer now.
        r"\b(?:make|makes|made) you (?:feel like )?(?:you )?cant breathe\b",
        r"\bchest (?:\w+ )?(?:\w+ )?(?:tight|heavy) with (?:emotion|grief|sadness|love|joy)\b",
        r"\b(?:nearly|almost|practically) having an? (?:heart attack|stroke)\b",
        r"\bcollapsed (?:into|onto|on|in|with)\b",
    )
)

# A negation shortly before a match: "not suicidal", "no thoughts of hurting myself",
# "would never hurt myself". Uncertainty is not negation: "not sure", "dont think", "no one".
_NEGATION = re.compile(
    r"\b(?:not(?! sure| certain)|never|no(?! one| matter| way| other)|zero|nor|without"
    r"|dont(?! know| think)|doesnt|didnt|wont|wouldnt|havent|hasnt|hadnt|isnt|arent|wasnt"
    r"|werent)\b"
)
# The negation belongs to the telling: "I havent told anyone I want to die".
_NEGATED_TELLING = re.compile(
    r"\b(?:not|never|dont|didnt|havent|hasnt|wont|cant)(?: \w+)? (?:tell|told|telling|say|said"
    r"|saying|mention\w*|admit\w*|show\w*|share\w*|let on)\b"
)
# "I cant go a day without wanting to die": without, after a negation, is no negation.
_DOUBLE_NEGATIVE = re.compile(r"\b(?:cant|not|never|hardly|barely)\b(?: \w+){0,4} without$")
# A screening question being reported: "the nurse asked whether I had thoughts of suicide".
_REPORTED_QUESTION = re.compile(r"\basked (?:me |us )?(?:if|whether|about(?! me| us))\b")
# A negation reaches back only to the previous comma or conjunction.
_NEGATION_REACH = re.compile(r",|\b(?:and|so|because|then|though|although|while)\b")
_NEGATION_WORDS = 5
# The resolved past, around the match up to the nearest commas: "used to", "as a teenager",
# "years ago", "before I started ketamine", "the thoughts have gone"; not "I used to love
# running, now I want to die".
_RESOLVED_PAST = re.compile(
    r"\b(?:used to|when (?:i|we|he|she|they) (?:was|were) (?:a |\d+|kids|teens|teenagers"
    r"|young|little|children)|as a (?:kid|child|teen\w*)|years ago|in my (?:teens"
    r"|twenties|thirties|\d0s)|before (?:i started|starting|ketamine|treatment|the infusions"
    r"|the sessions)|now im (?:\w+ )?not(?! sure| certain)|(?:thoughts|urges|feelings|they|it)"
    r" (?:have|has|are) (?:\w+ )?(?:gone|stopped|faded|lifted|eased|disappeared))\b"
)
# ...unless, anywhere in the clause, it is coming back.
_RECURRENCE = re.compile(
    r"\b(?:again|back|returned|returning|creeping|relaps\w*|lately|tonight)\b"
)
_MEDIA = re.compile(
    r"\b(?:movie|film|book|novel|tv show|series|documentary|song|lyrics|podcast|episode"
    r"|character|article)\b"
)


def _negated(clause: str, start: int) -> bool:
    before = _NEGATION_REACH.split(clause[:start])[-1]
    if _REPORTED_QUESTION.search(before):
        return True
    window = " ".join(before.split()[-_NEGATION_WORDS:])
    if _NEGATED_TELLING.search(window) or _DOUBLE_NEGATIVE.search(window):
        return False
    # The match follows the window so that lookaheads see it: "no way out" is not a negation.
    return any(
        cue.start() < len(window) for cue in _NEGATION.finditer(f"{window} {clause[start:]}")
    )


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
    stretch = clause[clause.rfind(",", 0, start) + 1 : _next_comma(clause, end)]
    return not (_RESOLVED_PAST.search(stretch) and not _RECURRENCE.search(clause))


def _next_comma(clause: str, end: int) -> int:
    comma = clause.find(",", end)
    return len(clause) if comma < 0 else comma


# Every rule at once: one pass that most clauses, matching nothing, never get past.
_ANY_RULE = re.compile("|".join(f"(?:{rule.pattern.pattern})" for rule in _CRISIS_RULES))


def crisis_category(text: str) -> CrisisCategory | None:
    """The kind of crisis the text expresses ("medical" first when several), or None."""
    if not isinstance(text, str):  # a caller's None or bytes must not break a reply
        return None
    clauses = [clause for clause in _clauses(normalise(text)) if _ANY_RULE.search(clause)]
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


_RESOURCE_FIELDS = {"name", "contact", "note"}


def _parse_resources(raw: object, where: str, problems: list[str]) -> tuple[Resource, ...]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table holding resources = [ ... ]")
        return ()
    for unknown in sorted(set(raw) - {"resources"}):
        problems.append(f"{where}: unknown field {unknown!r}")
    entries = raw.get("resources")
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
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: not UTF-8 text") from None
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
    known = _iso_countries()
    for code, raw in countries.items():
        where = f"{path.name} [country.{code}]"
        if code not in known:
            problems.append(f"{where}: not an ISO 3166 country code (two capitals: US, GB, DE)")
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
def _iso_countries() -> frozenset[str]:
    # tzdata's iso3166.tab is the list of codes; it catches "UK" for GB, which a pattern would
    # let through to never match. Without the file, any two capitals pass.
    codes = frozenset(row[0] for row in _table_rows(_tzdata_text("iso3166.tab")))
    return codes or frozenset(
        f"{first}{second}" for first in ascii_uppercase for second in ascii_uppercase
    )


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


def is_country_code(code: str) -> bool:
    """Whether `code` is an ISO 3166 country code (two capitals)."""
    return code in _iso_countries()
