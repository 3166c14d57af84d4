//! The knowledge base's search: an organization's articles (物业费缴纳, 停水停电通知, …) in a
//! tantivy index held in memory, Chinese cut into words by jieba (search mode, so 物业费 also
//! finds 物业), ranked by BM25 with the title and keywords weighed above the body.
//!
//! BM25 ranks but does not say whether the best article answers the question, so each hit also
//! carries its **coverage**: the share of the question's words (weighted by how rare each is
//! among the articles; a word no article holds weighs most) that the article holds, and whether
//! the question names the article's topic (a word of its title or one of its keywords, which
//! the organization chooses). The owner bot answers from an article only when one of the two
//! holds ([`Hit::answers`]; docs/triage.md, "The owner bot").

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::{LowerCaser, TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::TriageError;

/// The least coverage at which the bot answers from an article.
pub const ANSWER_COVERAGE: f32 = 0.5;
/// The most distinct words of a question searched (a question is at most 1,000 characters; the
/// cost of one is words × articles).
pub const MAX_QUESTION_WORDS: usize = 48;
/// The most characters of an article's body an excerpt shows.
pub const EXCERPT_CHARS: usize = 120;

/// An article as an organization keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Article {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub body: String,
}

/// The articles every new organization starts with (and the demo's), `data/articles.json`.
pub fn starter_articles() -> Vec<Article> {
    serde_json::from_str(include_str!("../data/articles.json")).expect("data/articles.json is valid")
}

/// One article found for a question.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Hit {
    pub id: String,
    pub title: String,
    /// The body's beginning, at most [`EXCERPT_CHARS`] characters.
    pub excerpt: String,
    /// BM25's score (ranks hits of one question; not comparable across questions).
    pub score: f32,
    /// The weighted share of the question's words the article holds, 0..1.
    pub coverage: f32,
    /// Whether the question names what the article is about: a word of its title, or one of
    /// its keywords.
    pub topic: bool,
}

impl Hit {
    /// Whether the bot may answer the question with this article: the question names the
    /// article's topic, or shares at least [`ANSWER_COVERAGE`] of its weighted words with it.
    pub fn answers(&self) -> bool {
        self.topic || self.coverage >= ANSWER_COVERAGE
    }
}

/// Words that carry no topic: particles, pronouns, question words, politeness.
const STOPWORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "嘛",
    "哦",
    "么",
    "我",
    "我们",
    "你",
    "你们",
    "您",
    "他",
    "她",
    "它",
    "是",
    "在",
    "有",
    "和",
    "与",
    "或",
    "也",
    "都",
    "就",
    "还",
    "要",
    "想",
    "请问",
    "请",
    "问",
    "一下",
    "下",
    "怎么",
    "怎么办",
    "怎样",
    "如何",
    "什么",
    "哪里",
    "哪儿",
    "哪",
    "几",
    "多少",
    "能",
    "能不能",
    "可以",
    "可不可以",
    "会",
    "这",
    "那",
    "这个",
    "那个",
    "个",
    "家",
    "我家",
    "咱们",
    "谢谢",
    "麻烦",
    "你好",
    "您好",
    "一个",
    "不",
    "没",
    "吗？",
    "时候",
    "几点",
    "现在",
    "今天",
    "需要",
    "应该",
    "到",
    "给",
    "把",
    "被",
    "让",
    "去",
    "来",
    "上",
];

struct Indexed {
    article: Article,
    words: HashSet<String>,
    /// Title, keywords and body, for words jieba cut differently in the article (交 in 交费).
    text: String,
    /// The words of its title and keywords: what the article is about.
    topic: HashSet<String>,
}

impl Indexed {
    fn holds(&self, word: &str) -> bool {
        self.words.contains(word) || self.text.contains(word)
    }
}

/// An organization's articles, searchable.
pub struct KnowledgeIndex {
    reader: IndexReader,
    title: Field,
    keywords: Field,
    body: Field,
    ord: Field,
    analyzer: TextAnalyzer,
    articles: Vec<Indexed>,
}

impl std::fmt::Debug for KnowledgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeIndex").field("articles", &self.articles.len()).finish_non_exhaustive()
    }
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words).filter(LowerCaser).build()
}

/// jieba's words in search mode (物业费 is also 物业) as tantivy tokens, from the process's one
/// jieba ([`crate::features::jieba`]).
#[derive(Clone)]
struct Words;

struct WordStream {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream {
        let tokens = crate::features::jieba()
            .tokenize(text, jieba_rs::TokenizeMode::Search, true)
            .into_iter()
            .enumerate()
            .map(|(position, t)| {
                let offset_from = t.word.as_ptr() as usize - text.as_ptr() as usize;
                Token {
                    offset_from,
                    offset_to: offset_from + t.word.len(),
                    position,
                    text: t.word.to_owned(),
                    position_length: 1,
                }
            })
            .collect();
        WordStream { tokens, at: 0 }
    }
}

impl TokenStream for WordStream {
    fn advance(&mut self) -> bool {
        self.at += 1;
        self.at <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.at - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.at - 1]
    }
}

fn model_error(e: tantivy::TantivyError) -> TriageError {
    TriageError::Model(format!("knowledge index: {e}"))
}

impl KnowledgeIndex {
    /// Indexes the articles (in memory; a few milliseconds for tens of articles).
    pub fn build(articles: &[Article]) -> Result<Self, TriageError> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("jieba")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let title = schema.add_text_field("title", text.clone());
        let keywords = schema.add_text_field("keywords", text.clone());
        let body = schema.add_text_field("body", text);
        let ord = schema.add_u64_field("ord", INDEXED | STORED);
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register("jieba", analyzer());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000).map_err(model_error)?;
        let mut analyzer = analyzer();
        let mut indexed = Vec::with_capacity(articles.len());
        for (i, article) in articles.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(title, &article.title);
            doc.add_text(keywords, article.keywords.join(" "));
            doc.add_text(body, &article.body);
            doc.add_u64(ord, i as u64);
            writer.add_document(doc).map_err(model_error)?;
            let about = format!("{} {}", article.title, article.keywords.join(" "));
            let all = format!("{about} {}", article.body);
            let held = words(&mut analyzer, &all).into_iter().collect();
            let mut topic: HashSet<String> = words(&mut analyzer, &about).into_iter().collect();
            topic.extend(article.keywords.iter().map(|k| k.to_lowercase()));
            indexed.push(Indexed { article: article.clone(), words: held, text: all.to_lowercase(), topic });
        }
        writer.commit().map_err(model_error)?;
        let reader = index.reader().map_err(model_error)?;
        Ok(KnowledgeIndex { reader, title, keywords, body, ord, analyzer, articles: indexed })
    }

    /// How many articles are indexed.
    pub fn len(&self) -> usize {
        self.articles.len()
    }

    /// Whether no article is indexed.
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    /// The best `limit` articles for a question, best first; none when no word of it is in any
    /// article.
    pub fn search(&self, question: &str, limit: usize) -> Vec<Hit> {
        let mut analyzer = self.analyzer.clone();
        let mut terms = words(&mut analyzer, question);
        let lowered = question.to_lowercase();
        // The first words as written, each once.
        let mut seen = HashSet::new();
        terms.retain(|t| seen.insert(t.clone()));
        terms.truncate(MAX_QUESTION_WORDS);
        if terms.is_empty() || self.articles.is_empty() {
            return Vec::new();
        }
        let weight = |word: &str| {
            let held = self.articles.iter().filter(|a| a.holds(word)).count() as f32;
            ((self.articles.len() as f32 + 1.0) / (held + 0.5)).ln()
        };
        let weights: Vec<f32> = terms.iter().map(|t| weight(t)).collect();
        let total: f32 = weights.iter().sum();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in &terms {
            for (field, boost) in [(self.title, 2.0), (self.keywords, 2.0), (self.body, 1.0)] {
                let query = TermQuery::new(Term::from_field_text(field, term), IndexRecordOption::WithFreqs);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), boost))));
            }
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let Ok(found) = searcher.search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score()) else {
            return Vec::new();
        };
        found
            .into_iter()
            .filter_map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).ok()?;
                let ord = doc.get_first(self.ord).and_then(|v| v.as_u64())? as usize;
                let held = self.articles.get(ord)?;
                let covered: f32 = terms.iter().zip(&weights).filter(|(t, _)| held.holds(t)).map(|(_, w)| w).sum();
                let topic = terms.iter().any(|t| held.topic.contains(t))
                    || held.article.keywords.iter().any(|k| !k.is_empty() && lowered.contains(&k.to_lowercase()));
                Some(Hit {
                    id: held.article.id.clone(),
                    topic,
                    title: held.article.title.clone(),
                    excerpt: excerpt(&held.article.body),
                    score,
                    coverage: if total > 0.0 { covered / total } else { 0.0 },
                })
            })
            .collect()
    }

    /// The article of an id.
    pub fn article(&self, id: &str) -> Option<&Article> {
        self.articles.iter().map(|a| &a.article).find(|a| a.id == id)
    }
}

/// The words of a text that carry a topic: jieba's words without punctuation, digits and
/// [`STOPWORDS`].
fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = TokenStream::next(&mut stream) {
        let word = token.text.trim();
        if word.is_empty()
            || word.chars().all(|c| !c.is_alphanumeric() || c.is_ascii_digit())
            || STOPWORDS.contains(&word)
        {
            continue;
        }
        out.push(word.to_owned());
    }
    out
}

fn excerpt(body: &str) -> String {
    let mut out: String = body.chars().take(EXCERPT_CHARS).collect();
    if body.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> KnowledgeIndex {
        KnowledgeIndex::build(&starter_articles()).unwrap()
    }

    #[test]
    fn finds_the_article_that_answers() {
        let kb = index();
        for (question, id) in [
            ("物业费在哪里交啊", "property-fee"),
            ("装修能几点开始干活", "renovation"),
            ("快递放哪了，驿站几点关门", "parcels"),
            ("访客的车进小区怎么收费", "parking"),
            ("明天是不是要停水", "water-power-outage"),
        ] {
            let hits = kb.search(question, 3);
            assert_eq!(hits.first().map(|h| h.id.as_str()), Some(id), "{question}: {hits:?}");
            assert!(hits[0].answers(), "{question}: {hits:?}");
        }
    }

    #[test]
    fn words_no_article_holds_lower_the_coverage() {
        let kb = index();
        let hits = kb.search("小区附近有什么好的幼儿园推荐", 3);
        assert!(hits.iter().all(|h| !h.answers()), "{hits:?}");
        assert!(kb.search("？？？", 3).is_empty());
        assert!(kb.search("", 3).is_empty());
    }

    #[test]
    fn an_empty_base_finds_nothing() {
        let kb = KnowledgeIndex::build(&[]).unwrap();
        assert!(kb.is_empty());
        assert!(kb.search("物业费", 3).is_empty());
    }

    #[test]
    fn query_syntax_is_plain_text() {
        let kb = index();
        // Characters a query parser would read as syntax are words or nothing here.
        let hits = kb.search("物业费 AND (\"发票\" OR -停车) title:*", 3);
        assert_eq!(hits.first().map(|h| h.id.as_str()), Some("property-fee"));
    }
}
