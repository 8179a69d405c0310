package org.kerashrf.ser.core

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Result
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import java.io.File
import kotlin.system.exitProcess

/**
 * Runs every `*Test` class of `core` with JUnit 4 and prints one summary line,
 * `Kotlin core: N passed, M failed, K skipped`, that CI (pytest) parses. Used where there is no
 * Gradle: `java -cp <classes>:<kotlin-stdlib>:<junit4>:<hamcrest> org.kerashrf.ser.core.CoreTestMainKt`.
 *
 * Test classes are found by scanning the class folder that this class was loaded from, so a new
 * test class is picked up without editing a list.
 */
fun main(args: Array<String>) {
    val root = File(Golden::class.java.protectionDomain.codeSource.location.toURI())
    val pkg = Golden::class.java.`package`.name
    val dir = File(root, pkg.replace('.', '/'))
    val classes = (dir.listFiles() ?: emptyArray())
        .map { it.name }
        .filter { it.endsWith("Test.class") && '$' !in it }
        .sorted()
        .map { Class.forName("$pkg.${it.removeSuffix(".class")}") }
        .filter { args.isEmpty() || it.simpleName in args }
    var passed = 0
    var skipped = 0
    val failures = ArrayList<Failure>()
    val core = JUnitCore()
    core.addListener(object : RunListener() {
        private var bad = false

        override fun testStarted(description: Description) {
            bad = false
        }

        override fun testFailure(failure: Failure) {
            bad = true
            failures.add(failure)
            println("FAIL ${failure.description.displayName}: ${failure.message}")
        }

        override fun testAssumptionFailure(failure: Failure) {
            bad = true
            skipped++
            println("SKIP ${failure.description.displayName}: ${failure.message}")
        }

        override fun testIgnored(description: Description) {
            skipped++
        }

        override fun testFinished(description: Description) {
            if (!bad) {
                passed++
                println("PASS ${description.displayName}")
            }
        }
    })
    val result: Result = core.run(*classes.toTypedArray())
    for (f in failures) {
        println("---- ${f.description.displayName}")
        println(f.trace.lineSequence().take(25).joinToString("\n"))
    }
    println("Kotlin core: $passed passed, ${failures.size} failed, $skipped skipped (${classes.size} classes, ${result.runTime} ms)")
    exitProcess(if (failures.isEmpty() && classes.isNotEmpty()) 0 else 1)
}
