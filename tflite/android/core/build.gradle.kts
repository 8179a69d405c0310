import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Pure Kotlin/JVM: no android.* and no LiteRT, so it builds and tests anywhere (CI compiles it
// with kotlinc from npm and runs the same JUnit tests, see ../README.md).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // Golden vectors written by Python (tests/tflite/test_android_core.py with
    // KERAS_HRF_GOLDEN_OUT=DIR); without -PkerasHrfGolden=DIR the golden tests are skipped.
    providers.gradleProperty("kerasHrfGolden").orNull?.let {
        systemProperty("kerashrf.golden", file(it).absolutePath)
    }
    testLogging {
        events("passed", "skipped", "failed")
    }
}
