package org.kerashrf.ser.core

/**
 * Raised for text that is not valid JSON; [position] is the character offset of the problem.
 */
class JsonException(message: String, val position: Int) :
    IllegalArgumentException("$message at character $position")

/**
 * A small, strict JSON parser (RFC 8259) for `model_meta.json` and the golden-vector index.
 *
 * Hand-written on purpose: `core` must compile and test with nothing but the Kotlin standard
 * library (CI has no Maven repository), and `org.json` exists only on Android.
 *
 * Values map to Kotlin as: object -> `Map<String, Any?>` (insertion order kept), array ->
 * `List<Any?>`, string -> `String`, number -> `Long` when written without fraction or exponent
 * and within range, else `Double`; `true`/`false` -> `Boolean`; `null` -> `null`. Python's
 * non-standard `NaN`/`Infinity` are rejected, as `json.dumps(allow_nan=False)` never writes them.
 */
object Json {
    /** Parses [text] as one JSON value (surrounding whitespace allowed). */
    fun parse(text: String): Any? {
        val parser = Parser(text)
        parser.skipWhitespace()
        val value = parser.value(depth = 0)
        parser.skipWhitespace()
        if (!parser.atEnd()) parser.fail("unexpected text after the JSON value")
        return value
    }

    // Deep enough for any real document, shallow enough that hostile input cannot overflow the
    // stack of a small Android thread.
    private const val MAX_DEPTH = 256

    private class Parser(private val s: String) {
        private var i = 0

        fun atEnd() = i >= s.length

        fun fail(message: String): Nothing = throw JsonException(message, i)

        fun skipWhitespace() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++
        }

        fun value(depth: Int): Any? {
            if (depth > MAX_DEPTH) fail("nesting deeper than $MAX_DEPTH")
            if (atEnd()) fail("unexpected end of text, expected a value")
            return when (val c = s[i]) {
                '{' -> obj(depth)
                '[' -> array(depth)
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') number() else fail("unexpected character '$c'")
            }
        }

        private fun literal(word: String, result: Any?): Any? {
            if (!s.startsWith(word, i)) fail("invalid literal, expected '$word'")
            i += word.length
            return result
        }

        private fun obj(depth: Int): Map<String, Any?> {
            i++ // '{'
            val out = LinkedHashMap<String, Any?>()
            skipWhitespace()
            if (i < s.length && s[i] == '}') {
                i++
                return out
            }
            while (true) {
                skipWhitespace()
                if (atEnd() || s[i] != '"') fail("expected a string key")
                val key = string()
                skipWhitespace()
                if (atEnd() || s[i] != ':') fail("expected ':' after key \"$key\"")
                i++
                skipWhitespace()
                if (out.containsKey(key)) fail("duplicate key \"$key\"")
                out[key] = value(depth + 1)
                skipWhitespace()
                if (atEnd()) fail("unexpected end of text inside an object")
                when (s[i]) {
                    ',' -> i++
                    '}' -> {
                        i++
                        return out
                    }
                    else -> fail("expected ',' or '}' in an object")
                }
            }
        }

        private fun array(depth: Int): List<Any?> {
            i++ // '['
            val out = ArrayList<Any?>()
            skipWhitespace()
            if (i < s.length && s[i] == ']') {
                i++
                return out
            }
            while (true) {
                skipWhitespace()
                out.add(value(depth + 1))
                skipWhitespace()
                if (atEnd()) fail("unexpected end of text inside an array")
                when (s[i]) {
                    ',' -> i++
                    ']' -> {
                        i++
                        return out
                    }
                    else -> fail("expected ',' or ']' in an array")
                }
            }
        }

        private fun string(): String {
            i++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (atEnd()) fail("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (atEnd()) fail("unterminated escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("truncated \\u escape")
                                val hex = s.substring(i, i + 4)
                                val code = hex.toIntOrNull(16) ?: fail("invalid \\u escape '$hex'")
                                sb.append(code.toChar())
                                i += 4
                            }
                            else -> fail("invalid escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in a string")
                    else -> sb.append(c)
                }
            }
        }

        private fun number(): Any {
            val start = i
            if (s[i] == '-') i++
            if (atEnd()) fail("truncated number")
            if (s[i] == '0') {
                i++
            } else if (s[i] in '1'..'9') {
                while (i < s.length && s[i] in '0'..'9') i++
            } else {
                fail("invalid number")
            }
            var integral = true
            if (i < s.length && s[i] == '.') {
                integral = false
                i++
                if (atEnd() || s[i] !in '0'..'9') fail("expected digits after '.'")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                integral = false
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                if (atEnd() || s[i] !in '0'..'9') fail("expected digits in the exponent")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val text = s.substring(start, i)
            if (integral) text.toLongOrNull()?.let { return it }
            // Java's parser is correctly rounded, so a float32 written by Python as its shortest
            // double repr reads back to the same float32 after toFloat().
            return text.toDouble()
        }
    }
}
